package harness

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Maintenance under load: a steady, paced put load runs while one
// maintenance operation (compaction, defragmentation) runs; the puts whose
// lifetime overlaps the operation are the ones it can stall.
const (
	maintRate       = 1000 // puts per second, all clients together
	maintClients    = 10
	maintKeys       = 1000 // key space of the paced puts (64 B keys, 256 B values)
	maintKeyLen     = 64
	maintPrefix     = "/cairnbench/load/"
	maintReqTimeout = 2 * time.Minute // long enough that a stall shows as latency, not as a timeout
	bigQuota        = "8589934592"    // 8 GiB: the fills must not hit the default 2 GiB quota
)

// pacedPuts issues puts at rate per second over clients clients (one
// connection each unless conns is set): request i is due at start + i/rate,
// and a client that is behind schedule sends at once (a stall shows as the
// latency of the requests in flight, and the backlog is sent after it). With
// rate <= 0 the load is not paced: each client sends its next put as soon as
// its previous one completes (a closed loop, as etcd's benchmark put).
// Latency is measured from send to response.
type pacedPuts struct {
	endpoints  []string // each connection is to all of them (clientv3 balances)
	rate       int      // puts per second, all clients together; <= 0: unpaced
	clients    int
	conns      int // connections the clients share round-robin; 0: one per client
	keys       int
	valSize    int
	reqTimeout time.Duration
	maxReqs    int // hard bound on requests issued
	// Optional: the key and value of request i (default: maintPrefix keys
	// in a key space of keys, a value of valSize bytes), and a hook called
	// just before request i is sent.
	key    func(i int) string
	value  func(i int) string
	onSend func(i int, t time.Time)
	// do, when set, is request i instead of the put (the load then paces
	// other requests, e.g. reads); its error is the request's outcome.
	do func(ctx context.Context, cli *clientv3.Client, i int) error
}

type putSample struct {
	i     int
	start time.Time
	lat   time.Duration
	err   string
}

// pacedRun is a running pacedPuts.
type pacedRun struct {
	l       pacedPuts
	conns   []*clientv3.Client
	close   func()
	stop    chan struct{}
	wg      sync.WaitGroup
	issued  atomic.Int64
	start   time.Time
	mu      sync.Mutex
	samples []putSample
	waiters []doneWaiter
}

type doneWaiter struct {
	n  int
	ch chan struct{}
}

func (l pacedPuts) start(ctx context.Context) (*pacedRun, error) {
	nconns := l.conns
	if nconns <= 0 {
		nconns = l.clients
	}
	conns, closeAll, err := dialConnsTo(l.endpoints, nconns)
	if err != nil {
		return nil, err
	}
	p := &pacedRun{l: l, conns: conns, close: closeAll, stop: make(chan struct{}), start: time.Now()}
	val := strings.Repeat("l", l.valSize)
	var interval time.Duration // 0: unpaced, every request is due at once
	if l.rate > 0 {
		interval = time.Second / time.Duration(l.rate)
	}
	for c := 0; c < l.clients; c++ {
		p.wg.Add(1)
		go func(cli *clientv3.Client) {
			defer p.wg.Done()
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for {
				i := p.issued.Add(1) - 1
				if i >= int64(l.maxReqs) {
					p.issued.Add(-1)
					return
				}
				if wait := time.Until(p.start.Add(time.Duration(i) * interval)); wait > 0 {
					timer.Reset(wait)
					select {
					case <-timer.C:
					case <-p.stop:
						p.issued.Add(-1)
						return
					case <-ctx.Done():
						p.issued.Add(-1)
						return
					}
				} else {
					select {
					case <-p.stop:
						p.issued.Add(-1)
						return
					case <-ctx.Done():
						p.issued.Add(-1)
						return
					default:
					}
				}
				k, v := "", val
				switch {
				case l.do != nil: // not a put
				case l.key != nil:
					k = l.key(int(i))
				default:
					k = fixedKey(maintPrefix, int(i)%l.keys, maintKeyLen)
				}
				if l.value != nil {
					v = l.value(int(i))
				}
				rctx, cancel := context.WithTimeout(ctx, l.reqTimeout)
				t := time.Now()
				if l.onSend != nil {
					l.onSend(int(i), t)
				}
				var err error
				if l.do != nil {
					err = l.do(rctx, cli, int(i))
				} else {
					_, err = cli.Put(rctx, k, v)
				}
				d := time.Since(t)
				cancel()
				s := putSample{i: int(i), start: t, lat: d}
				if err != nil {
					s.err = err.Error()
				}
				p.record(s)
			}
		}(p.conns[c%len(p.conns)])
	}
	return p, nil
}

func (p *pacedRun) record(s putSample) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.samples = append(p.samples, s)
	kept := p.waiters[:0]
	for _, w := range p.waiters {
		if len(p.samples) >= w.n {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	p.waiters = kept
}

// completed returns a channel closed once n more requests than now have
// completed.
func (p *pacedRun) completed(more int) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := make(chan struct{})
	n := len(p.samples) + more
	if more <= 0 {
		close(ch)
		return ch
	}
	p.waiters = append(p.waiters, doneWaiter{n: n, ch: ch})
	return ch
}

// waitFor waits until more requests completed, failing at the deadline.
func (p *pacedRun) waitFor(ctx context.Context, more int, limit time.Duration, what string) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-p.completed(more):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("%s: %d puts did not complete within %s", what, more, limit)
	}
}

// waitProgress waits until more requests than now completed, for a load
// that may run far below its rate (the server slows down under it): it
// fails when no request completes for stall, or at limit, and logs the
// progress every `every` through logf (may be nil).
func (p *pacedRun) waitProgress(ctx context.Context, more int, stall, limit, every time.Duration, what string,
	logf func(string, ...any)) error {
	done := p.completed(more)
	count := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.samples)
	}
	start := time.Now()
	from := count()
	last, lastChange, lastLog := from, start, start
	tick := time.NewTicker(min(100*time.Millisecond, max(stall/4, time.Millisecond)))
	defer tick.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case now := <-tick.C:
			n := count()
			if n != last {
				last, lastChange = n, now
			}
			switch {
			case now.Sub(start) >= limit:
				return fmt.Errorf("%s: %d of %d puts completed within %s", what, n-from, more, limit.Round(time.Second))
			case stall > 0 && now.Sub(lastChange) >= stall:
				return fmt.Errorf("%s: stalled, no put completed for %s (%d of %d completed)", what, stall, n-from, more)
			}
			if logf != nil && every > 0 && now.Sub(lastLog) >= every {
				lastLog = now
				logf("%s: %d of %d puts completed after %s (%.0f/s)", what, n-from, more,
					now.Sub(start).Round(time.Second), float64(n-from)/now.Sub(start).Seconds())
			}
		}
	}
}

// finish stops the clients, waits for their requests in flight and returns
// every sample and the time the load ran.
func (p *pacedRun) finish() ([]putSample, time.Duration, int) {
	close(p.stop)
	p.wg.Wait()
	elapsed := time.Since(p.start)
	p.close()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.samples, elapsed, int(p.issued.Load())
}

// underLoad is the outcome of one operation run under the paced load.
type underLoad struct {
	m        Measurement // every put of the load
	issued   int
	opSecs   float64
	during   []float64 // latency (s) of the puts that overlapped the operation, sorted
	outside  []float64 // latency (s) of the others, sorted
	opErr    error
	opStart  time.Time
	duration time.Duration
	samples  []putSample
}

// runUnderLoad starts the paced put load, waits for warmup's worth of puts,
// runs op, waits for tail's worth of puts after it, then stops the load.
// op may return the time the operation proper started (after its own
// preparation); zero means when op was called.
func runUnderLoad(ctx context.Context, endpoints []string, warmup, tail time.Duration,
	op func(context.Context, *pacedRun) (time.Time, error)) (underLoad, error) {
	l := pacedPuts{endpoints: endpoints, rate: maintRate, clients: maintClients, keys: maintKeys, valSize: valSize,
		reqTimeout: maintReqTimeout, maxReqs: int(maxDuration(ctx).Seconds()+1) * maintRate}
	warmN := max(1, int(warmup.Seconds()*maintRate))
	tailN := max(1, int(tail.Seconds()*maintRate))
	p, err := l.start(ctx)
	if err != nil {
		return underLoad{}, err
	}
	// The waits allow ten times the paced duration (and at least 30 s) on
	// a loaded machine before giving up.
	slack := func(d time.Duration) time.Duration { return max(10*d, 30*time.Second) }
	var res underLoad
	if err := p.waitFor(ctx, warmN, slack(warmup), "warm-up"); err != nil {
		p.finish()
		return res, err
	}
	opStart := time.Now()
	var t0 time.Time
	t0, res.opErr = op(ctx, p)
	opEnd := time.Now()
	if !t0.IsZero() {
		opStart = t0
	}
	res.opStart = opStart
	res.opSecs = opEnd.Sub(opStart).Seconds()
	tailErr := p.waitFor(ctx, tailN, slack(tail), "tail")
	samples, elapsed, issued := p.finish()
	res.issued, res.duration, res.samples = issued, elapsed, samples
	var lats []float64
	errs := map[string]int{}
	for _, s := range samples {
		if s.err != "" {
			errs[s.err]++
			continue
		}
		lats = append(lats, s.lat.Seconds())
		if s.start.Before(opEnd) && s.start.Add(s.lat).After(opStart) {
			res.during = append(res.during, s.lat.Seconds())
		} else {
			res.outside = append(res.outside, s.lat.Seconds())
		}
	}
	res.m = summarize(lats, errs, elapsed)
	res.during, res.outside = sortedCopy(res.during), sortedCopy(res.outside)
	if tailErr != nil {
		return res, tailErr
	}
	return res, nil
}

// values turns an underLoad into the metrics of maintMetrics.
func (u underLoad) values() (map[string]float64, error) {
	if u.opErr != nil {
		return nil, fmt.Errorf("operation failed: %w", u.opErr)
	}
	if len(u.during) == 0 {
		return nil, errors.New("no put overlapped the operation")
	}
	if len(u.outside) == 0 {
		return nil, errors.New("no put outside the operation")
	}
	return map[string]float64{
		"op_s":           u.opSecs,
		"during_p99_ms":  pctl(u.during, 99) * 1000,
		"during_max_ms":  u.during[len(u.during)-1] * 1000,
		"outside_p99_ms": pctl(u.outside, 99) * 1000,
		"rps":            u.m.RPS,
	}, nil
}

func maintMetrics(op string) []metricDef {
	return []metricDef{
		{"op_s", op + " duration", "s", false},
		{"during_p99_ms", "put p99 during " + op, "ms", false},
		{"during_max_ms", "put max latency during " + op, "ms", false},
		{"outside_p99_ms", "put p99 outside " + op, "ms", false},
		{"rps", "put rate achieved (target " + strconv.Itoa(maintRate) + ")", "puts/s", true},
	}
}

// fill writes total puts of 64 B sequential keys (each of keys written in
// turn) with valSize-byte random values through etcd's benchmark tool, 100
// clients / 10 connections, and returns it as a part of the run.
func (r *runner) fill(ctx context.Context, s *server, keys, total, valSize int) (PartResult, error) {
	m, err := r.benchmark(ctx, s, 100, 10, "put", "--key-size", "64", "--val-size", strconv.Itoa(valSize),
		"--sequential-keys", "--key-space-size", strconv.Itoa(keys), "--total", strconv.Itoa(total))
	p := PartResult{Name: "fill", Expected: total, Measurement: m}
	if err != nil {
		return p, fmt.Errorf("fill: %w", err)
	}
	if m.Errors > 0 {
		return p, fmt.Errorf("fill: %d of %d puts failed", m.Errors, total)
	}
	return p, nil
}

func maintOut(u underLoad, parts []PartResult) runOut {
	return runOut{m: &u.m, expected: u.issued, parts: parts}
}

// compactionWorkload: keys written 5 times each, then a compaction at the
// newest revision (removing the 4 older versions of every key, 80% of the
// history) runs, physical (the call returns when the deletion is done),
// under the paced put load.
func compactionWorkload(sz Sizes) workload {
	const writes = 5
	return workload{
		name: "compaction-under-load", server: true,
		desc: fmt.Sprintf("%d keys (64 B, 256 B values) written %d times each, then a physical compaction at the newest "+
			"revision (80%% of the history) while %d clients put %d/s (64 B keys, 256 B values); latency of the puts that "+
			"overlapped the compaction, p99 as pkg/report (the max below 100 puts)",
			sz.CompactKeys, writes, maintClients, maintRate),
		metrics: maintMetrics("compaction"),
		run: func(ctx context.Context, r *runner, s *server) (runOut, error) {
			fill, err := r.fill(ctx, s, sz.CompactKeys, writes*sz.CompactKeys, valSize)
			if err != nil {
				return runOut{parts: []PartResult{fill}}, err
			}
			gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			resp, err := s.cli.Get(gctx, "cairnbench-revision")
			cancel()
			if err != nil {
				return runOut{parts: []PartResult{fill}}, fmt.Errorf("revision after fill: %w", err)
			}
			rev := resp.Header.Revision
			u, err := runUnderLoad(ctx, []string{s.endpoint}, sz.MaintWarmup, sz.MaintTail,
				func(ctx context.Context, _ *pacedRun) (time.Time, error) {
					_, err := s.cli.Compact(ctx, rev, clientv3.WithCompactPhysical())
					return time.Time{}, err
				})
			out := maintOut(u, []PartResult{fill})
			if err != nil {
				return out, err
			}
			out.values, err = u.values()
			return out, err
		},
	}
}

// defragWorkload: a backend grown with DefragMiB of key+value bytes (64 B
// keys, 1 KiB values, every byte live, so the defrag copies all of it), then
// a defragmentation under the paced put load.
func defragWorkload(sz Sizes) workload {
	const defragVal = 1024
	keys := max(1, sz.DefragMiB<<20/(64+defragVal))
	metrics := append(maintMetrics("defrag"), metricDef{"db_before_mib", "backend size before defrag (Status.dbSize)", "MiB", false})
	return workload{
		name: "defrag-under-load", server: true, serverArgs: []string{"--quota-backend-bytes", bigQuota},
		desc: fmt.Sprintf("a backend grown with %d MiB of live data (%d keys of 64 B, 1 KiB values), then a defrag while "+
			"%d clients put %d/s (64 B keys, 256 B values); latency of the puts that overlapped the defrag, "+
			"p99 as pkg/report (the max below 100 puts); quota 8 GiB on both sides",
			sz.DefragMiB, keys, maintClients, maintRate),
		metrics: metrics,
		run: func(ctx context.Context, r *runner, s *server) (runOut, error) {
			fill, err := r.fill(ctx, s, keys, keys, defragVal)
			if err != nil {
				return runOut{parts: []PartResult{fill}}, err
			}
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			st, err := s.cli.Status(sctx, s.endpoint)
			cancel()
			if err != nil {
				return runOut{parts: []PartResult{fill}}, fmt.Errorf("status after fill: %w", err)
			}
			u, err := runUnderLoad(ctx, []string{s.endpoint}, sz.MaintWarmup, sz.MaintTail,
				func(ctx context.Context, _ *pacedRun) (time.Time, error) {
					_, err := s.cli.Defragment(ctx, s.endpoint)
					return time.Time{}, err
				})
			out := maintOut(u, []PartResult{fill})
			if err != nil {
				return out, err
			}
			if out.values, err = u.values(); err != nil {
				return out, err
			}
			out.values["db_before_mib"] = float64(st.DbSize) / (1 << 20)
			return out, nil
		},
	}
}
