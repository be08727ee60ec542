package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Sizes are the request counts of one mode. Every load is bounded by its
// count and by RunTimeout.
type Sizes struct {
	Rounds     int           `json:"rounds"`
	FsyncCount int           `json:"fsync_count"`
	Put1       int           `json:"put_1_client"`
	Put100     int           `json:"put_100_clients"`
	Put1000    int           `json:"put_1000_clients"`
	Range1     int           `json:"range_1_client"`
	Range100   int           `json:"range_100_clients"`
	Txn1       int           `json:"txn_1_client"`
	Txn100     int           `json:"txn_100_clients"`
	MemKeys    int           `json:"memory_keys"`
	RunTimeout time.Duration `json:"run_timeout_ns"`

	PageKeys    int           `json:"paging_keys"`          // keys under the paged prefix (the issue: 10,000)
	PageScans   int           `json:"paging_scans"`         // full paged scans
	K8sObjects  int           `json:"k8s_objects"`          // objects in the pool
	K8sTxns     int           `json:"k8s_txns"`             // optimistic updates
	MemRevKeys  int           `json:"memory_revision_keys"` // keys written 5 times each
	CompactKeys int           `json:"compaction_keys"`      // keys written 5 times, then compacted
	DefragMiB   int           `json:"defrag_mib"`           // key+value bytes written before the defrag
	MaintWarmup time.Duration `json:"maintenance_warmup_ns"`
	MaintTail   time.Duration `json:"maintenance_tail_ns"`

	Put3m100      int           `json:"put_3_members_100_clients"`  // put-3m-100c requests
	Put3m1000     int           `json:"put_3_members_1000_clients"` // put-3m-1000c requests
	WatchWatchers int           `json:"watch_watchers"`             // watch-fanout watchers on the prefix (the issue: 10,000)
	WatchConns    int           `json:"watch_connections"`          // gRPC connections they are spread over
	WatchPuts     int           `json:"watch_puts"`                 // puts at 1,000/s, with and without the watchers
	K8sWatchers   int           `json:"k8s_watchers"`               // k8s-shape-watch: watchers on the object prefix
	K8sWatchTxns  int           `json:"k8s_watch_txns"`             // k8s-shape-watch: optimistic updates (quick: longer than k8s-shape's)
	IdleWatchers  int           `json:"idle_watchers"`              // watch-idle-*: idle watchers (the issue: 10,000)
	Leases        int           `json:"leases"`                     // lease-keepalive: leases kept alive (the issue: 10,000)
	LeaseWindow   time.Duration `json:"lease_window_ns"`            // lease-keepalive: how long they are kept alive
	V2Set         int           `json:"v2_set"`                     // v2-set-100c requests
	V2Get         int           `json:"v2_get"`                     // v2-get-q-100c requests
	V2MemKeys     int           `json:"v2_memory_keys"`             // v2-memory distinct keys

	RangeUnderPut int `json:"range_under_put_reads"` // range-{l,s}-under-put-100c reads (the puts run meanwhile)
	SnapMiB       int `json:"snapshot_catchup_mib"`  // snapshot-catchup: key+value bytes in the backend the member must receive
}

// Modes: full is what docs/performance.md reports; quick takes a few minutes;
// tiny only proves the plumbing (its numbers mean nothing).
var Modes = map[string]Sizes{
	"full": {Rounds: 5, FsyncCount: 5000, Put1: 10000, Put100: 100000, Put1000: 200000,
		Range1: 20000, Range100: 200000, Txn1: 10000, Txn100: 100000, MemKeys: 1000000, RunTimeout: 30 * time.Minute,
		PageKeys: 10000, PageScans: 1000, K8sObjects: 10000, K8sTxns: 100000, MemRevKeys: 1000000,
		CompactKeys: 200000, DefragMiB: 1024, MaintWarmup: 2 * time.Second, MaintTail: 2 * time.Second,
		Put3m100: 100000, Put3m1000: 200000, WatchWatchers: 10000, WatchConns: 100, WatchPuts: 5000, K8sWatchers: 5, K8sWatchTxns: 100000,
		IdleWatchers: 10000, Leases: 10000, LeaseWindow: 30 * time.Second,
		V2Set: 100000, V2Get: 100000, V2MemKeys: 500000, RangeUnderPut: 100000, SnapMiB: 1024},
	"quick": {Rounds: 3, FsyncCount: 500, Put1: 1000, Put100: 10000, Put1000: 20000,
		Range1: 2000, Range100: 20000, Txn1: 1000, Txn100: 10000, MemKeys: 20000, RunTimeout: 3 * time.Minute,
		PageKeys: 10000, PageScans: 100, K8sObjects: 5000, K8sTxns: 10000, MemRevKeys: 20000,
		CompactKeys: 20000, DefragMiB: 48, MaintWarmup: time.Second, MaintTail: time.Second,
		Put3m100: 10000, Put3m1000: 20000, WatchWatchers: 1000, WatchConns: 10, WatchPuts: 2000, K8sWatchers: 5, K8sWatchTxns: 30000,
		IdleWatchers: 10000, Leases: 10000, LeaseWindow: 10 * time.Second,
		V2Set: 10000, V2Get: 20000, V2MemKeys: 50000, RangeUnderPut: 20000, SnapMiB: 64},
	// tiny's 100-client counts keep each run's server CPU well above the 10 ms
	// resolution of /proc/<pid>/stat, or "CPU per request" can read 0.
	"tiny": {Rounds: 2, FsyncCount: 101, Put1: 101, Put100: 2000, Put1000: 2000,
		Range1: 101, Range100: 2000, Txn1: 101, Txn100: 2000, MemKeys: 300, RunTimeout: time.Minute,
		PageKeys: 1200, PageScans: 6, K8sObjects: 1000, K8sTxns: 300, MemRevKeys: 300,
		CompactKeys: 400, DefragMiB: 4, MaintWarmup: 200 * time.Millisecond, MaintTail: 200 * time.Millisecond,
		Put3m100: 200, Put3m1000: 1000, WatchWatchers: 20, WatchConns: 2, WatchPuts: 200, K8sWatchers: 2, K8sWatchTxns: 300,
		IdleWatchers: 200, Leases: 200, LeaseWindow: 2 * time.Second,
		V2Set: 200, V2Get: 200, V2MemKeys: 500, RangeUnderPut: 1000, SnapMiB: 4},
}

const (
	valSize     = 256
	rangeKey    = "rangekey" // 8 B
	floorName   = "fsync-floor"
	put1Name    = "put-1c"
	rangeS1Name = "range-s-1c"
	floorSystem = "disk"
)

type metricDef struct {
	Key          string
	Label        string
	Unit         string
	HigherBetter bool
}

var loadMetrics = []metricDef{
	{"rps", "throughput", "req/s", true},
	{"avg_ms", "mean latency", "ms", false},
	{"p99_ms", "p99 latency", "ms", false},
	{"cpu_us", "server CPU per request", "µs", false},
}

// runOut is what one workload run produced.
type runOut struct {
	m        *Measurement
	values   map[string]float64
	expected int // requests the run should have accounted for (0: not a load)
	// parts are the run's other request streams (a fill, the lists next to
	// the updates, ...): their failed requests fail the run just the same.
	parts []PartResult
	// errorsMeasured: failed requests are what the workload measures (the
	// puts lost across a leader kill); they are counted and shown but do
	// not fail the run by themselves.
	errorsMeasured bool
}

type workload struct {
	name       string
	desc       string
	server     bool     // false: a machine measurement (the fsync floor)
	serverArgs []string // extra server flags (both sides get the same)
	metrics    []metricDef
	run        func(ctx context.Context, r *runner, s *server) (runOut, error)
	// members > 1: the workload runs on a fresh cluster of that many
	// members (clusterRun instead of run).
	members    int
	clusterRun func(ctx context.Context, r *runner, c *cluster) (runOut, error)
	// v2: compared with the v2 reference (etcd 3.4 with --enable-v2)
	// instead of the etcd references, which do not serve v2.
	v2 bool
}

// loadValues extracts the load metrics; p99 is left out (and the run then
// fails) when there were too few requests to define it.
func loadValues(m Measurement) map[string]float64 {
	v := map[string]float64{"rps": m.RPS, "avg_ms": m.Average * 1000}
	if p, ok := m.Percentiles["99"]; ok {
		v["p99_ms"] = p * 1000
	}
	return v
}

// measureLoad runs a load of total requests against s and adds the
// server's CPU time per request to the load metrics.
func measureLoad(s *server, total int, run func() (*Measurement, error)) (runOut, error) {
	cpu0, cerr := procCPU(s.pid())
	m, err := run()
	if err != nil {
		return runOut{m: m, expected: total}, err
	}
	v := loadValues(*m)
	if cpu1, err := procCPU(s.pid()); err == nil && cerr == nil {
		v["cpu_us"] = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(total)
	}
	return runOut{m: m, values: v, expected: total}, nil
}

// workloads lists every workload in run order.
func workloads(sz Sizes) []workload {
	return []workload{
		{
			name: floorName, desc: "disk floor: sequential 512 B append + fdatasync on the data disk (preallocated file)",
			metrics: []metricDef{{"rps", "fsync rate", "ops/s", true}, {"avg_ms", "mean fsync latency", "ms", false}},
			run: func(ctx context.Context, r *runner, _ *server) (runOut, error) {
				m, err := measureFsyncFloor(ctx, r.work, sz.FsyncCount, sz.RunTimeout/2)
				if err != nil {
					return runOut{}, err
				}
				return runOut{m: &m, values: map[string]float64{"rps": m.RPS, "avg_ms": m.Average * 1000}}, nil
			},
		},
		toolWorkload(put1Name, "put, 1 client / 1 connection, 8 B keys (100k key space), 256 B values", 1, 1, sz.Put1,
			"put", "--key-size", "8", "--val-size", strconv.Itoa(valSize), "--key-space-size", "100000"),
		toolWorkload("put-100c", "put, 100 clients / 10 connections, 8 B keys, 256 B values", 100, 10, sz.Put100,
			"put", "--key-size", "8", "--val-size", strconv.Itoa(valSize), "--key-space-size", "100000"),
		toolWorkload("put-1000c", "put, 1000 clients / 100 connections, 8 B keys, 256 B values", 1000, 100, sz.Put1000,
			"put", "--key-size", "8", "--val-size", strconv.Itoa(valSize), "--key-space-size", "100000"),
		toolWorkload("range-l-1c", "range 1 key, linearizable, 1 client / 1 connection", 1, 1, sz.Range1,
			"range", rangeKey, "--consistency", "l"),
		toolWorkload("range-l-100c", "range 1 key, linearizable, 100 clients / 10 connections", 100, 10, sz.Range100,
			"range", rangeKey, "--consistency", "l"),
		toolWorkload(rangeS1Name, "range 1 key, serializable, 1 client / 1 connection", 1, 1, sz.Range1,
			"range", rangeKey, "--consistency", "s"),
		toolWorkload("range-s-100c", "range 1 key, serializable, 100 clients / 10 connections", 100, 10, sz.Range100,
			"range", rangeKey, "--consistency", "s"),
		rangeUnderPutWorkload(sz, false),
		rangeUnderPutWorkload(sz, true),
		txnWorkload("txn-1c", "txn compare(mod_revision)+put, 1 client / 1 connection (harness generator)", 1, 1, sz.Txn1),
		txnWorkload("txn-100c", "txn compare(mod_revision)+put, 100 clients / 10 connections (harness generator)", 100, 10, sz.Txn100),
		k8sWorkload(sz, 0),
		k8sWorkload(sz, sz.K8sWatchers),
		pagingWorkload(sz),
		{
			name: "memory", server: true,
			desc:    fmt.Sprintf("RSS and backend size after %d puts of distinct 64 B keys with 256 B values", sz.MemKeys),
			metrics: memoryMetrics,
			run: func(ctx context.Context, r *runner, s *server) (runOut, error) {
				return memoryRun(ctx, r, s, sz.MemKeys, 1)
			},
		},
		{
			name: "memory-revisions", server: true, serverArgs: []string{"--quota-backend-bytes", bigQuota},
			desc: fmt.Sprintf("RSS and backend size after %d distinct 64 B keys with 256 B values are each put 5 times "+
				"(%d puts, no compaction; quota 8 GiB on both sides)", sz.MemRevKeys, 5*sz.MemRevKeys),
			metrics: memoryMetrics,
			run: func(ctx context.Context, r *runner, s *server) (runOut, error) {
				return memoryRun(ctx, r, s, sz.MemRevKeys, 5)
			},
		},
		compactionWorkload(sz),
		defragWorkload(sz),
		put3mWorkload("put-3m-100c", 100, 10, sz.Put3m100),
		put3mWorkload("put-3m-1000c", 1000, 100, sz.Put3m1000),
		range3mWorkload("range-3m-l-100c", 100, 10, sz.Range100),
		leaderKillWorkload(sz),
		growShrinkWorkload(sz),
		snapshotCatchupWorkload(sz),
		watchFanoutWorkload(sz),
		idleWatchWorkload(sz, false),
		idleWatchWorkload(sz, true),
		leaseKeepAliveWorkload(sz),
		v2Workloads(sz)[0],
		v2Workloads(sz)[1],
		v2Workloads(sz)[2],
	}
}

var memoryMetrics = []metricDef{
	{"rss_mib", "RSS (VmRSS)", "MiB", false},
	{"hwm_mib", "peak RSS (VmHWM)", "MiB", false},
	{"db_mib", "backend size (Status.dbSize)", "MiB", false},
	{"db_in_use_mib", "backend in use (Status.dbSizeInUse)", "MiB", false},
	{"datadir_mib", "data dir disk usage (du)", "MiB", false},
}

func toolWorkload(name, desc string, clients, conns, total int, sub ...string) workload {
	return workload{
		name: name, desc: desc, server: true, metrics: loadMetrics,
		run: func(ctx context.Context, r *runner, s *server) (runOut, error) {
			if sub[0] == "range" {
				if err := preloadRangeKey(ctx, s); err != nil {
					return runOut{}, err
				}
			}
			args := append(append([]string{}, sub...), "--total", strconv.Itoa(total))
			return measureLoad(s, total, func() (*Measurement, error) {
				return r.benchmark(ctx, s, clients, conns, args...)
			})
		},
	}
}

func txnWorkload(name, desc string, clients, conns, total int) workload {
	return workload{
		name: name, desc: desc, server: true, metrics: loadMetrics,
		run: func(ctx context.Context, r *runner, s *server) (runOut, error) {
			l := txnLoad{endpoint: s.endpoint, clients: clients, conns: conns, total: total,
				keysPer: 16, valSize: valSize, reqTimeout: 10 * time.Second}
			return measureLoad(s, total, func() (*Measurement, error) {
				m, err := l.run(ctx)
				return &m, err
			})
		},
	}
}

// benchmark runs etcd's benchmark tool against s and parses its report.
func (r *runner) benchmark(ctx context.Context, s *server, clients, conns int, args ...string) (*Measurement, error) {
	return r.benchmarkAt(ctx, s.endpoint, clients, conns, args...)
}

// benchmarkAt runs etcd's benchmark tool against endpoints (comma-separated;
// the tool spreads its connections over them round-robin).
func (r *runner) benchmarkAt(ctx context.Context, endpoints string, clients, conns int, args ...string) (*Measurement, error) {
	full := append([]string{
		"--endpoints", endpoints, "--clients", strconv.Itoa(clients), "--conns", strconv.Itoa(conns),
		"--dial-timeout", "5s", "--precise",
	}, args...)
	var stdout, stderr bytes.Buffer
	err := r.procs.run(ctx, r.cfg.Sizes.RunTimeout, "benchmark", r.work, os.Environ(), &stdout, &stderr, BenchmarkTool(), full...)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, tail(stderr.String(), 1500))
	}
	m, err := ParseBenchmarkOutput(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("%w\n--- stdout ---\n%s", err, tail(stdout.String(), 1500))
	}
	return &m, nil
}

// memoryRun puts keys distinct 64 B keys writes times each (in rounds over
// the key space: --sequential-keys cycles through it), then reads the
// server's RSS, backend size and data dir size.
func memoryRun(ctx context.Context, r *runner, s *server, keys, writes int) (runOut, error) {
	total := keys * writes
	m, err := r.benchmark(ctx, s, 100, 10, "put", "--key-size", "64", "--val-size", strconv.Itoa(valSize),
		"--sequential-keys", "--key-space-size", strconv.Itoa(keys), "--total", strconv.Itoa(total))
	if err != nil {
		return runOut{m: m, expected: total}, err
	}
	out := runOut{m: m, expected: total}
	if m.Errors > 0 {
		return out, nil
	}
	// The backend commits in batches: wait, with a deadline, until two
	// Status answers 200 ms apart agree on its size.
	var db, inUse int64
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := s.cli.Status(sctx, s.endpoint)
		cancel()
		if err != nil {
			return out, fmt.Errorf("status: %w", err)
		}
		stable := st.DbSize == db && st.DbSizeInUse == inUse
		db, inUse = st.DbSize, st.DbSizeInUse
		if stable || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-tick.C:
		}
	}
	rss, hwm, err := procStatus(s.pid())
	if err != nil {
		return out, err
	}
	dd, err := dirSize(s.dataDir)
	if err != nil {
		return out, err
	}
	const mib = 1 << 20
	out.values = map[string]float64{
		"rss_mib": float64(rss) / mib, "hwm_mib": float64(hwm) / mib,
		"db_mib": float64(db) / mib, "db_in_use_mib": float64(inUse) / mib, "datadir_mib": float64(dd) / mib,
	}
	return out, nil
}

// WorkloadList returns the name and description of every workload.
func WorkloadList(sz Sizes) [][2]string {
	var out [][2]string
	for _, w := range workloads(sz) {
		out = append(out, [2]string{w.name, w.desc})
	}
	return out
}
