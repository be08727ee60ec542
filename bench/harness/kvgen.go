package harness

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// pctl returns the p-th percentile of sorted samples as etcd's pkg/report
// (and summarize) define it: the first sample with at least p% of the
// samples before it. With too few samples for that one to exist (p99 needs
// more than 100) it returns the largest sample, so small runs still report a
// value, and a pessimistic one.
func pctl(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	for i := 0; i < n; i++ {
		if float64(i)*100/float64(n) >= p {
			return sorted[i]
		}
	}
	return sorted[n-1]
}

func sortedCopy(v []float64) []float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var sum float64
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}

// fixedKey formats prefix+index zero-padded to exactly size bytes (the
// index keeps its order, so keys sort as their indexes do).
func fixedKey(prefix string, i, size int) string {
	digits := size - len(prefix)
	if digits < 8 {
		digits = 8
	}
	return fmt.Sprintf("%s%0*d", prefix, digits, i)
}

// prefixEnd is clientv3.GetPrefixRangeEnd for a non-empty prefix.
func prefixEnd(prefix string) string { return clientv3.GetPrefixRangeEnd(prefix) }

// preloadBatch is the number of puts per preload transaction, under both
// servers' default --max-txn-ops (128).
const preloadBatch = 64

// preload writes keys key(0..n-1) with value val in transactions of
// preloadBatch puts, one after another, and returns each key's mod_revision.
// Any failure ends the run: the measurement after it would be meaningless.
func preload(ctx context.Context, cli *clientv3.Client, n int, key func(int) string, val string) ([]int64, error) {
	revs := make([]int64, n)
	for i := 0; i < n; i += preloadBatch {
		end := min(i+preloadBatch, n)
		ops := make([]clientv3.Op, 0, end-i)
		for j := i; j < end; j++ {
			ops = append(ops, clientv3.OpPut(key(j), val))
		}
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := cli.Txn(tctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("preload keys %d-%d of %d: %w", i, end-1, n, err)
		}
		for j := i; j < end; j++ {
			revs[j] = resp.Header.Revision
		}
	}
	return revs, nil
}

// dialConns opens n client connections to endpoint; close closes them all.
func dialConns(endpoint string, n int) (conns []*clientv3.Client, closeAll func(), err error) {
	return dialConnsTo([]string{endpoint}, n)
}

// dialConnsTo opens n clients, each to all of endpoints (clientv3 balances
// its requests over them and skips a member that is down).
func dialConnsTo(endpoints []string, n int) (conns []*clientv3.Client, closeAll func(), err error) {
	closeAll = func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for i := 0; i < n; i++ {
		c, err := newClientTo(endpoints)
		if err != nil {
			closeAll()
			return nil, func() {}, err
		}
		conns = append(conns, c)
	}
	return conns, closeAll, nil
}

// errTally collects failed requests by message across goroutines.
type errTally struct {
	mu sync.Mutex
	m  map[string]int
}

func (t *errTally) add(kind string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]int{}
	}
	t.m[kind]++
}

func (t *errTally) snapshot() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.m))
	for k, v := range t.m {
		out[k] = v
	}
	return out
}

// latSink collects latencies (seconds) across goroutines.
type latSink struct {
	mu sync.Mutex
	v  []float64
}

func (s *latSink) add(local []float64) {
	s.mu.Lock()
	s.v = append(s.v, local...)
	s.mu.Unlock()
}

// ---------------------------------------------------------------------------
// range-prefix-paging

const (
	pagePrefix = "/cairnbench/paging/"
	pageLimit  = 500
	pageKeyLen = 64
)

// pagingLoad scans a prefix of keys keys from start to end in pages of
// pageLimit, the way a client lists with limit and continue: each page starts
// right after the previous page's last key, and pages after the first are
// pinned to the first page's revision (as kube-apiserver's continue token
// is). Reads are linearizable. clients scanners share total scans.
//
// Every scan is checked: the first page's count and the keys seen over the
// whole scan must both equal keys, in strictly increasing order; a scan that
// does not is a failed scan (its pages still count as pages).
type pagingLoad struct {
	endpoint   string
	clients    int
	conns      int
	scans      int
	keys       int
	reqTimeout time.Duration
}

type pagingResult struct {
	pages, scans       Measurement
	pageLats, scanLats []float64 // seconds, successful pages and scans
	pagesIssued        int
}

func (l pagingLoad) run(ctx context.Context) (pagingResult, error) {
	conns, closeAll, err := dialConns(l.endpoint, l.conns)
	if err != nil {
		return pagingResult{}, err
	}
	defer closeAll()
	var (
		next        atomic.Int64
		pagesIssued atomic.Int64
		pageLats    latSink
		scanLats    latSink
		pageErrs    errTally
		scanErrs    errTally
		wg          sync.WaitGroup
	)
	end := prefixEnd(pagePrefix)
	maxPages := l.keys/pageLimit + 2 // a server that never says "no more" cannot loop forever
	start := time.Now()
	for c := 0; c < l.clients; c++ {
		wg.Add(1)
		go func(cli *clientv3.Client) {
			defer wg.Done()
			var pl, sl []float64
			defer func() { pageLats.add(pl); scanLats.add(sl) }()
			for next.Add(1) <= int64(l.scans) && ctx.Err() == nil {
				scanStart := time.Now()
				from, seen, rev := pagePrefix, 0, int64(0)
				last := ""
				problem := ""
				for page := 0; ; page++ {
					if page == maxPages {
						problem = fmt.Sprintf("scan did not end after %d pages", maxPages)
						break
					}
					opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(pageLimit)}
					if rev != 0 {
						opts = append(opts, clientv3.WithRev(rev))
					}
					rctx, cancel := context.WithTimeout(ctx, l.reqTimeout)
					pagesIssued.Add(1)
					t := time.Now()
					resp, err := cli.Get(rctx, from, opts...)
					d := time.Since(t)
					cancel()
					if err != nil {
						pageErrs.add(err.Error())
						problem = "page failed"
						break
					}
					pl = append(pl, d.Seconds())
					if rev == 0 {
						rev = resp.Header.Revision
						if resp.Count != int64(l.keys) {
							problem = fmt.Sprintf("first page counts %d keys, want %d", resp.Count, l.keys)
						}
					}
					for _, kv := range resp.Kvs {
						if k := string(kv.Key); k <= last {
							problem = "keys out of order"
						} else {
							last = k
						}
					}
					seen += len(resp.Kvs)
					if !resp.More || len(resp.Kvs) == 0 {
						break
					}
					from = string(append(bytes.Clone(resp.Kvs[len(resp.Kvs)-1].Key), 0))
				}
				if problem == "" && seen != l.keys {
					problem = fmt.Sprintf("scan saw %d keys, want %d", seen, l.keys)
				}
				if problem != "" {
					scanErrs.add(problem)
					continue
				}
				sl = append(sl, time.Since(scanStart).Seconds())
			}
		}(conns[c%len(conns)])
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := pagingResult{
		pages:       summarize(pageLats.v, pageErrs.snapshot(), elapsed),
		scans:       summarize(scanLats.v, scanErrs.snapshot(), elapsed),
		pageLats:    pageLats.v,
		scanLats:    scanLats.v,
		pagesIssued: int(pagesIssued.Load()),
	}
	if ctx.Err() != nil && res.scans.Succeeded+res.scans.Errors < l.scans {
		return res, fmt.Errorf("paging: %w after %d of %d scans", errTimeout, res.scans.Succeeded+res.scans.Errors, l.scans)
	}
	return res, nil
}

func pagingWorkload(sz Sizes) workload {
	const clients, conns = 10, 10
	return workload{
		name: "range-prefix-paging", server: true,
		desc: fmt.Sprintf("linearizable scans of a %d-key prefix (64 B keys, 256 B values) in pages of %d "+
			"(each page starts after the last key, pinned to the first page's revision); %d scans by %d clients / %d connections; "+
			"p99 as pkg/report (the max below 100 samples)",
			sz.PageKeys, pageLimit, sz.PageScans, clients, conns),
		metrics: []metricDef{
			{"pages_per_s", "pages", "pages/s", true},
			{"page_p99_ms", "p99 page latency", "ms", false},
			{"scan_avg_ms", "mean full-scan latency", "ms", false},
			{"scan_p99_ms", "p99 full-scan latency", "ms", false},
		},
		run: func(ctx context.Context, r *runner, s *server) (runOut, error) {
			val := strings.Repeat("p", valSize)
			if _, err := preload(ctx, s.cli, sz.PageKeys, func(i int) string {
				return fixedKey(pagePrefix, i, pageKeyLen)
			}, val); err != nil {
				return runOut{}, err
			}
			l := pagingLoad{endpoint: s.endpoint, clients: clients, conns: conns, scans: sz.PageScans,
				keys: sz.PageKeys, reqTimeout: 30 * time.Second}
			res, err := l.run(ctx)
			out := runOut{m: &res.pages, expected: res.pagesIssued,
				parts: []PartResult{{Name: "full scans", Expected: sz.PageScans, Measurement: &res.scans}}}
			if err != nil {
				return out, err
			}
			if len(res.pageLats) == 0 || len(res.scanLats) == 0 {
				return out, nil // the failed requests fail the run
			}
			out.values = map[string]float64{
				"pages_per_s": res.pages.RPS,
				"page_p99_ms": pctl(sortedCopy(res.pageLats), 99) * 1000,
				"scan_avg_ms": mean(res.scanLats) * 1000,
				"scan_p99_ms": pctl(sortedCopy(res.scanLats), 99) * 1000,
			}
			return out, nil
		},
	}
}

// ---------------------------------------------------------------------------
// k8s-shape

const (
	k8sPrefix    = "/registry/cairnbench.io/objects/"
	k8sKeyLen    = 64
	k8sValSize   = 1024
	k8sListEvery = 50 * time.Millisecond
)

// k8sLoad is what kube-apiserver asks of etcd without watch. Updaters change
// objects of a preloaded pool the way GuaranteedUpdate does:
//
//	If(mod_revision(k) == last seen).Then(Put(k, v)).Else(Get(k))
//
// each client on its own share of the pool, so a failed compare means a lost
// or foreign write and is counted as a failed request. Beside them, one lister
// pages the pool's first page every k8sListEvery (Range of the prefix with
// limit pageLimit, linearizable, as a list with ?limit=500 does), checking
// that the page is full and the count is the pool's size. The lister stops
// when the updaters are done; both streams are bounded in count and time.
type k8sLoad struct {
	endpoint   string
	clients    int
	conns      int
	total      int
	objects    int
	revs       []int64 // mod_revision of each object after the preload
	reqTimeout time.Duration
	onUpdate   func(rev int64, sent time.Time) // optional: each successful update
}

type k8sResult struct {
	txn, list   Measurement
	txnLats     []float64
	listLats    []float64
	listsIssued int
}

func (l k8sLoad) run(ctx context.Context) (k8sResult, error) {
	conns, closeAll, err := dialConns(l.endpoint, l.conns)
	if err != nil {
		return k8sResult{}, err
	}
	defer closeAll()
	listCli, err := newClient(l.endpoint)
	if err != nil {
		return k8sResult{}, err
	}
	defer listCli.Close()

	var (
		next        atomic.Int64
		txnLats     latSink
		txnErrs     errTally
		listErrs    errTally
		listLats    []float64
		listsIssued int
		wg          sync.WaitGroup
	)
	val := strings.Repeat("o", k8sValSize)
	updatersDone := make(chan struct{})
	listerDone := make(chan struct{})
	start := time.Now()

	go func() {
		defer close(listerDone)
		tick := time.NewTicker(k8sListEvery)
		defer tick.Stop()
		end := prefixEnd(k8sPrefix)
		wantLen := min(l.objects, pageLimit)
		maxLists := int(maxDuration(ctx)/k8sListEvery) + 1
		for listsIssued < maxLists {
			rctx, cancel := context.WithTimeout(ctx, l.reqTimeout)
			listsIssued++
			t := time.Now()
			resp, err := listCli.Get(rctx, k8sPrefix, clientv3.WithRange(end), clientv3.WithLimit(pageLimit))
			d := time.Since(t)
			cancel()
			switch {
			case err != nil:
				listErrs.add(err.Error())
			case len(resp.Kvs) != wantLen || resp.Count != int64(l.objects) || resp.More != (l.objects > pageLimit):
				listErrs.add(fmt.Sprintf("list returned %d objects of count %d (more %v), want %d of %d",
					len(resp.Kvs), resp.Count, resp.More, wantLen, l.objects))
			default:
				listLats = append(listLats, d.Seconds())
			}
			select {
			case <-updatersDone:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	for c := 0; c < l.clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			cli := conns[c%len(conns)]
			var mine []int
			for j := c; j < l.objects; j += l.clients {
				mine = append(mine, j)
			}
			if len(mine) == 0 {
				return
			}
			local := make([]float64, 0, l.total/l.clients+1)
			defer func() { txnLats.add(local) }()
			for i := 0; next.Add(1) <= int64(l.total) && ctx.Err() == nil; i++ {
				j := mine[i%len(mine)]
				k := fixedKey(k8sPrefix, j, k8sKeyLen)
				t, d, fail := optimisticUpdate(ctx, cli, l.reqTimeout, k, val, &l.revs[j])
				if fail != "" {
					txnErrs.add(fail)
					continue
				}
				local = append(local, d.Seconds())
				if l.onUpdate != nil {
					l.onUpdate(l.revs[j], t)
				}
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(updatersDone)
	<-listerDone
	res := k8sResult{
		txn:         summarize(txnLats.v, txnErrs.snapshot(), elapsed),
		list:        summarize(listLats, listErrs.snapshot(), elapsed),
		txnLats:     txnLats.v,
		listLats:    listLats,
		listsIssued: listsIssued,
	}
	if ctx.Err() != nil && res.txn.Succeeded+res.txn.Errors < l.total {
		return res, fmt.Errorf("k8s-shape: %w after %d of %d txns", errTimeout, res.txn.Succeeded+res.txn.Errors, l.total)
	}
	return res, nil
}

// maxDuration is the time left before ctx's deadline (an hour without one).
func maxDuration(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return time.Hour
}

// k8sWorkload is k8s-shape, or with watchers > 0 k8s-shape-watch: the same
// load plus the apiserver's watch on the object prefix (k8sWatch).
func k8sWorkload(sz Sizes, watchers int) workload {
	const clients, conns = 100, 10
	name, what, txns := "k8s-shape", "kube-apiserver without watch", sz.K8sTxns
	metrics := []metricDef{
		{"rps", "txn throughput", "txn/s", true},
		{"avg_ms", "txn mean latency", "ms", false},
		{"p99_ms", "txn p99 latency", "ms", false},
		{"list_avg_ms", "list mean latency", "ms", false},
		{"list_p99_ms", "list p99 latency", "ms", false},
	}
	if watchers > 0 {
		name, txns = "k8s-shape-watch", sz.K8sWatchTxns
		what = fmt.Sprintf("kube-apiserver with watch (%d watchers on the object prefix from the preload's revision, "+
			"one connection each, every update checked to arrive at every watcher in revision order; "+
			"event latency = update sent → event received)", watchers)
		metrics = append(metrics, metricDef{"watch_avg_ms", "watch event mean latency", "ms", false},
			metricDef{"watch_p99_ms", "watch event p99 latency", "ms", false})
	}
	return workload{
		name: name, server: true,
		desc: fmt.Sprintf("%s: %d optimistic updates If(mod_revision==seen).Then(Put).Else(Get) "+
			"on a pool of %d objects (64 B keys, 1 KiB values), %d clients / %d connections each on its own objects; "+
			"beside them a linearizable list (limit %d, count checked) every %s; "+
			"list p99 as pkg/report (the max below 100 lists)",
			what, txns, sz.K8sObjects, clients, conns, pageLimit, k8sListEvery),
		metrics: metrics,
		run: func(ctx context.Context, r *runner, s *server) (runOut, error) {
			if watchers > 0 {
				if err := watchProbe(ctx, s.cli); err != nil {
					return runOut{}, err
				}
			}
			revs, err := preload(ctx, s.cli, sz.K8sObjects, func(i int) string {
				return fixedKey(k8sPrefix, i, k8sKeyLen)
			}, strings.Repeat("o", k8sValSize))
			if err != nil {
				return runOut{}, err
			}
			l := k8sLoad{endpoint: s.endpoint, clients: clients, conns: conns, total: txns,
				objects: sz.K8sObjects, revs: revs, reqTimeout: 10 * time.Second}
			var kw *k8sWatch
			if watchers > 0 {
				if kw, err = startK8sWatch(ctx, s.endpoint, slices.Max(revs)+1, watchers); err != nil {
					return runOut{}, err
				}
				l.onUpdate = kw.updated
			}
			res, err := l.run(ctx)
			out := runOut{m: &res.txn, expected: txns,
				parts: []PartResult{{Name: "lists", Expected: res.listsIssued, Measurement: &res.list}}}
			var watchLats []float64
			if kw != nil {
				part, lats, werr := kw.finish(ctx, max(30*time.Second, min(maxDuration(ctx)-5*time.Second, 5*time.Minute)), r.logf)
				out.parts, watchLats = append(out.parts, part), lats
				if err == nil {
					err = werr
				}
			}
			if err != nil {
				return out, err
			}
			if len(res.txnLats) == 0 || len(res.listLats) == 0 || (kw != nil && len(watchLats) == 0) {
				return out, nil // the failed requests fail the run
			}
			out.values = loadValues(res.txn)
			out.values["list_avg_ms"] = mean(res.listLats) * 1000
			out.values["list_p99_ms"] = pctl(sortedCopy(res.listLats), 99) * 1000
			if kw != nil {
				out.values["watch_avg_ms"] = mean(watchLats) * 1000
				out.values["watch_p99_ms"] = pctl(sortedCopy(watchLats), 99) * 1000
			}
			return out, nil
		},
	}
}
