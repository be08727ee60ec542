package harness

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// watchProbe opens a Watch stream and creates one watcher. Status
// Unimplemented means the server has no Watch ("not supported"); any other
// error, or an answer that is not "created", is a failure.
func watchProbe(ctx context.Context, cli *clientv3.Client) error {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(pctx)
	if err != nil {
		return classifyWatchErr(err)
	}
	req := &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{
		CreateRequest: &pb.WatchCreateRequest{Key: []byte("cairnbench-watch-probe")}}}
	if err := stream.Send(req); err != nil {
		// The server's status comes with Recv.
		if _, rerr := stream.Recv(); rerr != nil {
			return classifyWatchErr(rerr)
		}
		return classifyWatchErr(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		return classifyWatchErr(err)
	}
	if !resp.Created || resp.Canceled {
		return fmt.Errorf("watch probe: answer %+v, want created", resp)
	}
	return nil
}

func classifyWatchErr(err error) error {
	if status.Code(err) == codes.Unimplemented {
		return notSupported("Watch answers Unimplemented (%v)", err)
	}
	return fmt.Errorf("watch probe: %w", err)
}

// watchSet is a set of watchers on one prefix from one revision, spread
// over connections, each checking that its events are puts in strictly
// increasing revision order and handing each to onEvent (which returns a
// problem or ""). A watcher must receive exactly the events wanted (set
// with setWant once known): fewer are missing events, more or bad ones are
// failed events.
type watchSet struct {
	conns    []*clientv3.Client
	closeAll func()
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	created  chan error
	want     atomic.Int64
	counts   []atomic.Int64 // good events per watcher
	problems errTally
	bad      atomic.Int64   // failed events (the problems that are events)
	lastRecv []atomic.Int64 // unix nanos of each watcher's last event
	every    time.Duration  // waitAll's progress log interval
	stall    time.Duration  // waitAll fails after this long without an event
}

type watchEventFunc func(w int, kv *mvccpb.KeyValue, now time.Time) string

// startWatchSet dials conns clients and starts watchers watchers from
// revision rev. Call waitCreated, then (after setWant) waitAll.
func startWatchSet(ctx context.Context, endpoint, prefix string, rev int64, watchers, conns int,
	onEvent watchEventFunc) (*watchSet, error) {
	cs, closeAll, err := dialConns(endpoint, conns)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	ws := &watchSet{conns: cs, closeAll: closeAll, cancel: cancel, created: make(chan error, watchers),
		counts: make([]atomic.Int64, watchers), lastRecv: make([]atomic.Int64, watchers),
		every: watchProgressEvery, stall: watchStallLimit}
	ws.want.Store(1 << 62)
	for w := 0; w < watchers; w++ {
		ws.wg.Add(1)
		go ws.watch(wctx, cs[w%len(cs)], w, prefix, rev, onEvent)
	}
	return ws, nil
}

func (ws *watchSet) watch(ctx context.Context, cli *clientv3.Client, w int, prefix string, rev int64, onEvent watchEventFunc) {
	defer ws.wg.Done()
	wch := cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithCreatedNotify())
	first := true
	last := rev - 1
	for resp := range wch {
		if first {
			first = false
			if !resp.Created || resp.Err() != nil {
				ws.created <- fmt.Errorf("watcher %d not created: %v", w, resp.Err())
				ws.problems.add(fmt.Sprintf("watch not created: %v", resp.Err()))
				return
			}
			ws.created <- nil
		}
		if err := resp.Err(); err != nil {
			if ctx.Err() == nil {
				ws.problems.add(fmt.Sprintf("watch cancelled: %v", err))
			}
			return
		}
		now := time.Now()
		for _, ev := range resp.Events {
			problem := ""
			switch {
			case ev.Type != clientv3.EventTypePut:
				problem = "event is not a put"
			case ev.Kv.ModRevision <= last:
				problem = "event out of revision order or repeated"
			case ws.counts[w].Load() >= ws.want.Load():
				problem = "more events than puts"
			default:
				last = ev.Kv.ModRevision
				problem = onEvent(w, ev.Kv, now)
			}
			if problem != "" {
				ws.bad.Add(1)
				ws.problems.add(problem)
				continue
			}
			ws.counts[w].Add(1)
		}
		ws.lastRecv[w].Store(now.UnixNano())
	}
	if first && ctx.Err() == nil {
		ws.created <- fmt.Errorf("watcher %d: channel closed before created", w)
	}
}

// waitCreated waits until every watcher is created.
func (ws *watchSet) waitCreated(ctx context.Context, n int, limit time.Duration) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	for i := 0; i < n; i++ {
		select {
		case err := <-ws.created:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("only %d of %d watchers created within %s", i, n, limit)
		}
	}
	return nil
}

func (ws *watchSet) setWant(n int) { ws.want.Store(int64(n)) }

// Delivery watchdog: while waitAll waits it logs the events received so far
// every watchProgressEvery, and fails when no event at all (good or bad)
// has arrived for watchStallLimit (a watchSet's every and stall).
const (
	watchProgressEvery = 5 * time.Second
	watchStallLimit    = 30 * time.Second
)

// received is the number of events received so far, good and bad.
func (ws *watchSet) received() int64 {
	n := ws.bad.Load()
	for w := range ws.counts {
		n += ws.counts[w].Load()
	}
	return n
}

// waitAll waits until every watcher has its events, limit passes, or no
// event arrives for ws.stall (then err says so), then stops the watchers.
// It returns the good events, the missing ones, the failed events by kind
// and the time of the last event. logf (may be nil) gets the progress
// every ws.every.
func (ws *watchSet) waitAll(ctx context.Context, limit time.Duration, logf func(string, ...any)) (good, missing int, errs map[string]int, last time.Time, err error) {
	start := time.Now()
	deadline := start.Add(limit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	expected := int64(len(ws.counts)) * ws.want.Load()
	lastN, lastChange, lastLog := ws.received(), start, start
	for !ws.complete() && ctx.Err() == nil {
		now := time.Now()
		if !now.Before(deadline) {
			err = fmt.Errorf("watch delivery: %d of %d events within %s", ws.received(), expected, limit.Round(time.Second))
			break
		}
		if n := ws.received(); n != lastN {
			lastN, lastChange = n, now
		} else if ws.stall > 0 && now.Sub(lastChange) >= ws.stall {
			err = fmt.Errorf("watch delivery stalled: no event for %s, %d of %d events received (%d watchers incomplete)",
				ws.stall, n, expected, ws.incomplete())
			break
		}
		if logf != nil && ws.every > 0 && now.Sub(lastLog) >= ws.every {
			lastLog = now
			logf("watch delivery: %d of %d events (%.1f%%) after %s, %d watchers incomplete",
				lastN, expected, 100*float64(lastN)/float64(max(expected, 1)), now.Sub(start).Round(time.Second), ws.incomplete())
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	ws.cancel()
	ws.wg.Wait()
	ws.closeAll()
	want := int(ws.want.Load())
	for w := range ws.counts {
		c := int(ws.counts[w].Load())
		good += c
		missing += max(0, want-c)
		if t := ws.lastRecv[w].Load(); t > last.UnixNano() {
			last = time.Unix(0, t)
		}
	}
	errs = ws.problems.snapshot()
	if missing > 0 {
		errs["event not delivered"] += missing
	}
	return good, missing, errs, last, err
}

func (ws *watchSet) incomplete() int {
	want, n := ws.want.Load(), 0
	for w := range ws.counts {
		if ws.counts[w].Load() < want {
			n++
		}
	}
	return n
}

func (ws *watchSet) complete() bool {
	want := ws.want.Load()
	for w := range ws.counts {
		if ws.counts[w].Load() < want {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// watch-fanout

const (
	watchPrefix  = "/cairnbench/watch/"
	watchKeyLen  = 32
	watchValLen  = 32 // the put's index, zero-padded: etcd's benchmark watch-latency uses 32 B keys and values
	watchKeys    = 1000
	watchClients = 10
)

// watchFanoutWorkload: watchers on one prefix spread over connections, under
// paced puts (1,000/s, maint.go's generator) to keys of the prefix. Each
// put's value holds its index; its send time is recorded just before it is
// sent, and an event's latency is its receipt minus that time. Every
// watcher must receive every put, in revision order. The same put load runs
// first without watchers, on the same server, for the put p99 without
// fan-out.
func watchFanoutWorkload(sz Sizes) workload {
	return workload{
		name: "watch-fanout", server: true,
		desc: fmt.Sprintf("%d watchers on one prefix over %d gRPC connections (clientv3), %d puts at %d/s "+
			"(offered; %d clients, 32 B keys and values) to keys of the prefix, the rate achieved reported; event latency = put sent → event received "+
			"(percentiles from a 1%% log histogram); every watcher must get every put in revision order; "+
			"the same puts first without watchers", sz.WatchWatchers, sz.WatchConns, sz.WatchPuts, maintRate, watchClients),
		metrics: []metricDef{
			{"event_p50_ms", "event latency p50", "ms", false},
			{"event_p99_ms", "event latency p99", "ms", false},
			{"event_max_ms", "event latency max", "ms", false},
			{"events_per_s", "events delivered (first put → last event)", "events/s", true},
			{"put_p99_ms", "put p99 under fan-out", "ms", false},
			{"put_rps", "put rate achieved under fan-out (offered " + strconv.Itoa(maintRate) + "/s)", "puts/s", true},
			{"put_p99_nowatch_ms", "put p99, same load without watchers", "ms", false},
		},
		run: func(ctx context.Context, r *runner, s *server) (runOut, error) {
			if err := watchProbe(ctx, s.cli); err != nil {
				return runOut{}, err
			}
			return watchFanout(ctx, r, s, sz)
		},
	}
}

func watchFanout(ctx context.Context, r *runner, s *server, sz Sizes) (runOut, error) {
	n := sz.WatchPuts
	base := time.Now()
	sendAt := make([]atomic.Int64, n) // ns since base, set just before put i is sent
	pad := strings.Repeat("w", watchValLen-16)
	load := pacedPuts{endpoints: []string{s.endpoint}, rate: maintRate, clients: watchClients, valSize: watchValLen,
		reqTimeout: maintReqTimeout, maxReqs: n,
		key:   func(i int) string { return fixedKey(watchPrefix, i%watchKeys, watchKeyLen) },
		value: func(i int) string { return fmt.Sprintf("%016d", i) + pad },
	}
	slack := max(30*time.Second, 10*time.Duration(n)*time.Second/maintRate)
	// Under fan-out the server may accept puts far below the offered rate
	// (etcd 3.6.16 with 10,000 watchers on 2 cores: 70–80/s, it and the
	// harness's watchers each using a core), so the puts may take most of
	// the run's time; they fail if none completes for watchStallLimit.
	puts := func(what string, limit time.Duration, onSend func(int, time.Time)) (Measurement, []float64, error) {
		l := load
		l.onSend = onSend
		p, err := l.start(ctx)
		if err != nil {
			return Measurement{}, nil, err
		}
		werr := p.waitProgress(ctx, n, watchStallLimit, limit, watchProgressEvery, what, r.logf)
		samples, elapsed, _ := p.finish()
		var lats []float64
		errs := map[string]int{}
		for _, x := range samples {
			if x.err != "" {
				errs[x.err]++
			} else {
				lats = append(lats, x.lat.Seconds())
			}
		}
		return summarize(lats, errs, elapsed), sortedCopy(lats), werr
	}

	// The same puts without watchers.
	m0, lats0, err := puts("watch-fanout: puts without watchers", slack, nil)
	out := runOut{parts: []PartResult{{Name: "puts without watchers", Expected: n, Measurement: &m0}}}
	if err != nil || m0.Errors > 0 {
		return out, err // failed puts fail the run through the part
	}
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	resp, err := s.cli.Get(gctx, "cairnbench-revision")
	cancel()
	if err != nil {
		return out, fmt.Errorf("revision: %w", err)
	}

	hists := make([]latHist, sz.WatchConns)
	onEvent := func(w int, kv *mvccpb.KeyValue, now time.Time) string {
		v := string(kv.Value)
		if len(v) != watchValLen {
			return "event value of the wrong size"
		}
		i, err := strconv.Atoi(v[:16])
		if err != nil || i < 0 || i >= n {
			return "event value is not a put index"
		}
		sent := sendAt[i].Load()
		if sent == 0 {
			return "event for a put not sent yet"
		}
		hists[w%len(hists)].add(now.Sub(base) - time.Duration(sent))
		return ""
	}
	ws, err := startWatchSet(ctx, s.endpoint, watchPrefix, resp.Header.Revision+1, sz.WatchWatchers, sz.WatchConns, onEvent)
	if err != nil {
		return out, err
	}
	ws.setWant(n) // the bound during the puts; the puts that succeeded after them
	if err := ws.waitCreated(ctx, sz.WatchWatchers, slack); err != nil {
		ws.waitAll(ctx, 0, nil)
		return out, err
	}
	r.logf("watch-fanout: %d watchers created, putting", sz.WatchWatchers)
	firstSend := time.Now()
	m1, lats1, perr := puts("watch-fanout: puts under fan-out", max(slack, maxDuration(ctx)-2*time.Minute),
		func(i int, t time.Time) { sendAt[i].Store(int64(t.Sub(base))) })
	out.parts = append(out.parts, PartResult{Name: "puts under fan-out", Expected: n, Measurement: &m1})
	// Every watcher must receive every put that succeeded: when the puts
	// stopped early (perr) or some failed (which fail the run through the
	// part), waiting for n events per watcher could never end.
	ws.setWant(m1.Succeeded)
	r.logf("watch-fanout: %d puts done in %s (%d failed), waiting for %d events", m1.Succeeded,
		time.Since(firstSend).Round(time.Millisecond), m1.Errors, sz.WatchWatchers*m1.Succeeded)
	// Delivery may lag far behind the puts: allow for it, within the run's time.
	good, _, errs, last, werr := ws.waitAll(ctx, max(slack, maxDuration(ctx)-10*time.Second), r.logf)
	var all latHist
	for i := range hists {
		all.merge(&hists[i])
	}
	span := last.Sub(firstSend)
	em := all.measurement(errs, span)
	out.m, out.expected = &em, sz.WatchWatchers*n
	if perr != nil {
		return out, perr
	}
	if werr != nil {
		return out, werr
	}
	if good == 0 || len(lats0) == 0 || len(lats1) == 0 {
		return out, nil // the failed events or puts fail the run
	}
	out.values = map[string]float64{
		"event_p50_ms":       em.Percentiles["50"] * 1000,
		"event_p99_ms":       em.Percentiles["99"] * 1000,
		"event_max_ms":       em.Slowest * 1000,
		"events_per_s":       em.RPS,
		"put_p99_ms":         pctl(lats1, 99) * 1000,
		"put_rps":            m1.RPS,
		"put_p99_nowatch_ms": pctl(lats0, 99) * 1000,
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// k8s-shape-watch: the apiserver's watch beside its updates and lists

// k8sWatch is a handful of watchers (one connection each, as several
// apiserver informers) on the object prefix from the revision after the
// preload. Every successful update must reach every watcher, in revision
// order: after the load each watcher's revisions must be exactly those of
// the successful updates. Latency: update sent → event received.
type k8sWatch struct {
	ws       *watchSet
	watchers int
	mu       sync.Mutex
	sent     map[int64]time.Time // revision of each successful update → its send time
	recv     [][]watchRec        // per watcher; written only by its goroutine until waitAll
}

type watchRec struct {
	rev int64
	at  time.Time
}

func startK8sWatch(ctx context.Context, endpoint string, rev int64, watchers int) (*k8sWatch, error) {
	kw := &k8sWatch{watchers: watchers, sent: map[int64]time.Time{}, recv: make([][]watchRec, watchers)}
	ws, err := startWatchSet(ctx, endpoint, k8sPrefix, rev, watchers, watchers,
		func(w int, kv *mvccpb.KeyValue, now time.Time) string {
			kw.recv[w] = append(kw.recv[w], watchRec{kv.ModRevision, now})
			return ""
		})
	if err != nil {
		return nil, err
	}
	kw.ws = ws
	if err := ws.waitCreated(ctx, watchers, 30*time.Second); err != nil {
		ws.waitAll(ctx, 0, nil)
		return nil, err
	}
	return kw, nil
}

// updated records a successful update (called by the updaters).
func (kw *k8sWatch) updated(rev int64, sent time.Time) {
	kw.mu.Lock()
	kw.sent[rev] = sent
	kw.mu.Unlock()
}

// finish waits (up to limit) for every watcher to receive every update,
// checks them and returns the events as a part and their latencies.
func (kw *k8sWatch) finish(ctx context.Context, limit time.Duration, logf func(string, ...any)) (PartResult, []float64, error) {
	kw.mu.Lock()
	sent := kw.sent
	kw.mu.Unlock()
	kw.ws.setWant(len(sent))
	start := time.Now()
	_, _, errs, _, err := kw.ws.waitAll(ctx, limit, logf)
	var lats []float64
	for _, recs := range kw.recv {
		for _, rec := range recs {
			t, ok := sent[rec.rev]
			if !ok {
				errs["event for a revision no update made"]++
				continue
			}
			lats = append(lats, rec.at.Sub(t).Seconds())
		}
	}
	m := summarize(lats, errs, time.Since(start))
	return PartResult{Name: "watch events", Expected: kw.watchers * len(sent), Measurement: &m}, lats, err
}
