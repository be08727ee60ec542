package harness

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ---------------------------------------------------------------------------
// watch-idle-keys, watch-idle-prefix: memory per idle watcher

// idleSettle is how long the server is left alone after the watchers are
// created before its RSS is read (the creation burst's work is done).
const idleSettle = 5 * time.Second

func idleWatchWorkload(sz Sizes, prefix bool) workload {
	name, what := "watch-idle-keys", "each on a key of its own"
	if prefix {
		name, what = "watch-idle-prefix", "all on one prefix"
	}
	return workload{
		name: name, server: true,
		desc: fmt.Sprintf("RSS growth per idle watcher: %d watchers %s (clientv3, %d connections, one watch stream each), "+
			"created from the current revision with no write to what they watch; RSS read before and %s after "+
			"the last is created", sz.IdleWatchers, what, sz.WatchConns, idleSettle),
		metrics: []metricDef{
			{"per_watcher_b", "RSS growth per idle watcher", "B", false},
			{"rss_mib", "RSS with the watchers", "MiB", false},
			{"create_per_s", "watchers created per second", "watchers/s", true},
		},
		run: func(ctx context.Context, r *runner, s *server) (runOut, error) {
			if err := watchProbe(ctx, s.cli); err != nil {
				return runOut{}, err
			}
			return idleWatchRun(ctx, r, s, sz, prefix)
		},
	}
}

func idleWatchRun(ctx context.Context, r *runner, s *server, sz Sizes, prefix bool) (runOut, error) {
	n := sz.IdleWatchers
	cs, closeAll, err := dialConns(s.endpoint, sz.WatchConns)
	if err != nil {
		return runOut{}, err
	}
	defer closeAll()
	// Warm every connection's watch stream with one watcher, so the growth
	// measured is the watchers', not the streams'.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, c := range cs {
		if err := waitWatchCreated(wctx, c, "/cairnbench/idle-warm", false); err != nil {
			return runOut{}, err
		}
	}
	time.Sleep(time.Second)
	before, _, err := procStatus(s.pid())
	if err != nil {
		return runOut{}, err
	}
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, 100) // creations in flight
	for i := 0; i < n; i++ {
		key := fixedKey("/cairnbench/idle/", i, 32)
		if prefix {
			key = "/cairnbench/idle/"
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(c *clientv3.Client) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := waitWatchCreated(wctx, c, key, prefix); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}(cs[i%len(cs)])
	}
	wg.Wait()
	created := time.Since(start)
	errs := map[string]int{}
	if f := failed.Load(); f > 0 {
		errs[fmt.Sprintf("watch not created: %v", firstErr.Load())] = int(f)
	}
	lats := make([]float64, n-int(failed.Load()))
	m := summarize(lats, errs, created)
	out := runOut{m: &m, expected: n}
	if failed.Load() > 0 {
		return out, nil // the failed creations fail the run
	}
	r.logf("%s: %d watchers created in %s; idle for %s", map[bool]string{false: "watch-idle-keys", true: "watch-idle-prefix"}[prefix],
		n, created.Round(time.Millisecond), idleSettle)
	select {
	case <-time.After(idleSettle):
	case <-ctx.Done():
		return out, ctx.Err()
	}
	after, _, err := procStatus(s.pid())
	if err != nil {
		return out, err
	}
	out.values = map[string]float64{
		"per_watcher_b": float64(after-before) / float64(n),
		"rss_mib":       float64(after) / (1 << 20),
		"create_per_s":  float64(n) / created.Seconds(),
	}
	return out, nil
}

// waitWatchCreated starts a watch (kept until ctx ends) and waits for its
// created response.
func waitWatchCreated(ctx context.Context, c *clientv3.Client, key string, prefix bool) error {
	opts := []clientv3.OpOption{clientv3.WithCreatedNotify()}
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	wch := c.Watch(ctx, key, opts...)
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case resp, ok := <-wch:
		if !ok {
			return errors.New("watch channel closed before created")
		}
		if !resp.Created || resp.Err() != nil {
			return fmt.Errorf("not created: %v", resp.Err())
		}
		// Drain (nothing is expected) so clientv3 never blocks on it.
		go func() {
			for range wch {
			}
		}()
		return nil
	case <-t.C:
		return errors.New("no created response within a minute")
	}
}

// ---------------------------------------------------------------------------
// lease-keepalive: the server's cost of keeping many leases alive

// leaseTTL is short, but long enough that the first leases granted do not
// expire before their first renewal: granting 10,000 leases (each a raft
// proposal) took up to 7 s on the shared 2-core machine, and with 5 s
// leases etcd then revoked some and failed keep-alives waiting for the
// applied index.
const (
	leaseTTL   = 10 // seconds; each lease is renewed every leaseTTL/3 s, as clientv3's KeepAlive does
	leaseConns = 10
)

func leaseKeepAliveWorkload(sz Sizes) workload {
	rate := sz.Leases * 3 / leaseTTL
	return workload{
		name: "lease-keepalive", server: true,
		desc: fmt.Sprintf("%d leases (TTL %d s) granted, then each renewed every %.2g s (clientv3 KeepAlive's period, "+
			"TTL/3) over %d raw LeaseKeepAlive streams (one per connection), %d renewals/s paced, for %s: server CPU "+
			"over that window, keep-alive latency (request sent → its response); every answer must carry the granted TTL "+
			"(a lease that expired fails the run)", sz.Leases, leaseTTL, float64(leaseTTL)/3, leaseConns, rate, sz.LeaseWindow),
		metrics: []metricDef{
			{"cpu_cores", "server CPU over the window", "CPU s/s", false},
			{"cpu_us", "server CPU per keep-alive", "µs", false},
			{"p50_ms", "keep-alive latency p50", "ms", false},
			{"p99_ms", "keep-alive latency p99", "ms", false},
			{"rps", "keep-alives answered", "req/s", true},
		},
		run: func(ctx context.Context, r *runner, s *server) (runOut, error) {
			return leaseKeepAliveRun(ctx, r, s, sz)
		},
	}
}

func leaseKeepAliveRun(ctx context.Context, r *runner, s *server, sz Sizes) (runOut, error) {
	n := sz.Leases
	cs, closeAll, err := dialConns(s.endpoint, leaseConns)
	if err != nil {
		return runOut{}, err
	}
	defer closeAll()
	// Grant, 100 at a time.
	ids := make([]int64, n)
	var gfail atomic.Int64
	var gerr atomic.Value
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			gctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			resp, err := cs[i%len(cs)].Grant(gctx, leaseTTL)
			if err != nil {
				gfail.Add(1)
				gerr.CompareAndSwap(nil, err.Error())
				return
			}
			ids[i] = int64(resp.ID)
		}(i)
	}
	wg.Wait()
	if f := gfail.Load(); f > 0 {
		m := summarize(nil, map[string]int{fmt.Sprintf("grant: %v", gerr.Load()): int(f)}, 0)
		return runOut{parts: []PartResult{{Name: "grants", Expected: n, Measurement: &m}}}, nil
	}
	r.logf("lease-keepalive: %d leases granted, keeping them alive for %s", n, sz.LeaseWindow)

	// One stream per connection, each with its share of the leases, each
	// renewed every TTL/3: stream k sends its leases round-robin, request i
	// due at start + i*period/len(share).
	period := time.Duration(leaseTTL) * time.Second / 3
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type streamRes struct {
		lats []float64
		errs map[string]int
		sent int
	}
	res := make([]streamRes, len(cs))
	cpu0, cerr := procCPU(s.pid())
	start := time.Now()
	end := start.Add(sz.LeaseWindow)
	for k := range cs {
		share := ids[k:]
		var mine []int64
		for j := 0; j < len(share); j += len(cs) {
			mine = append(mine, share[j])
		}
		wg.Add(1)
		go func(k int, mine []int64) {
			defer wg.Done()
			lats, errs, sent := keepAliveStream(kctx, cs[k], mine, period, start, end)
			res[k] = streamRes{lats, errs, sent}
		}(k, mine)
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, cerr2 := procCPU(s.pid())
	var lats []float64
	errs := map[string]int{}
	sent := 0
	for _, x := range res {
		lats = append(lats, x.lats...)
		for e, c := range x.errs {
			errs[e] += c
		}
		sent += x.sent
	}
	m := summarize(lats, errs, elapsed)
	out := runOut{m: &m, expected: sent}
	if m.Errors > 0 || len(lats) == 0 {
		return out, nil
	}
	sorted := sortedCopy(lats)
	out.values = map[string]float64{
		"p50_ms": pctl(sorted, 50) * 1000,
		"p99_ms": pctl(sorted, 99) * 1000,
		"rps":    float64(len(lats)) / elapsed.Seconds(),
	}
	if cerr == nil && cerr2 == nil {
		cpu := cpu1 - cpu0
		out.values["cpu_cores"] = cpu.Seconds() / elapsed.Seconds()
		out.values["cpu_us"] = float64(cpu) / float64(time.Microsecond) / float64(len(lats))
	}
	return out, nil
}

// keepAliveStream renews ids on one LeaseKeepAlive stream until end, each
// every period, and returns the latencies of the answers (request → its
// answer; a stream answers in order), the failures and the requests sent.
func keepAliveStream(ctx context.Context, c *clientv3.Client, ids []int64, period time.Duration, start, end time.Time) (
	lats []float64, errs map[string]int, sent int) {
	errs = map[string]int{}
	if len(ids) == 0 {
		return nil, errs, 0
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := pb.NewLeaseClient(c.ActiveConnection()).LeaseKeepAlive(sctx)
	if err != nil {
		errs["keep-alive stream: "+err.Error()]++
		return nil, errs, 0
	}
	type pending struct {
		id int64
		at time.Time
	}
	q := make(chan pending, 1<<16)
	recvDone := make(chan struct{})
	var recvErr string
	rerrs := map[string]int{} // the receiver's, merged at the end
	go func() {
		defer close(recvDone)
		for p := range q {
			resp, err := stream.Recv()
			if err != nil {
				recvErr = "keep-alive answer: " + err.Error()
				return
			}
			now := time.Now()
			switch {
			case resp.ID != p.id:
				rerrs["keep-alive answered out of order"]++
			case resp.TTL != leaseTTL:
				rerrs[fmt.Sprintf("keep-alive TTL %d (lease expired?)", resp.TTL)]++
			default:
				lats = append(lats, now.Sub(p.at).Seconds())
			}
		}
	}()
	gap := period / time.Duration(len(ids))
	t := time.NewTimer(0)
	defer t.Stop()
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * gap)
		if !due.Before(end) {
			break
		}
		if d := time.Until(due); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				errs["cancelled"]++
				break
			}
			if ctx.Err() != nil {
				break
			}
		}
		id := ids[i%len(ids)]
		now := time.Now()
		if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
			errs["keep-alive send: "+err.Error()]++
			break
		}
		sent++
		select {
		case q <- pending{id, now}:
		case <-recvDone:
		}
	}
	close(q)
	<-recvDone
	answered := len(lats)
	for e, c := range rerrs {
		errs[e] += c
		answered += c
	}
	if recvErr != "" {
		errs[recvErr]++
		answered++
	}
	// Every request sent must be accounted for: answered, or failed.
	if missing := sent - answered; missing > 0 {
		errs["keep-alive not answered"] += missing
	}
	return lats, errs, sent
}
