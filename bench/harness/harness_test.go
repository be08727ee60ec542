package harness

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Output of etcd v3.6.8 tools/benchmark with --precise (trimmed histogram).
const sampleOK = `
Summary:
  Total:	0.028575624 secs.
  Slowest:	0.001662782 secs.
  Fastest:	5.9409e-05 secs.
  Average:	0.00014180951999999997 secs.
  Stddev:	0.00013456943436341556 secs.
  Requests/sec:	6998.9722709117395

Response time histogram:
  5.9409e-05 [1]	|
  0.0002197463 [192]	|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎
  0.0003800836 [4]	|
  0.0008610954999999999 [2]	|
  0.001662782 [1]	|

Latency distribution:
  10% in 8.5057e-05 secs.
  25% in 9.9208e-05 secs.
  50% in 0.000120071 secs.
  75% in 0.000152928 secs.
  90% in 0.000183233 secs.
  95% in 0.000210905 secs.
  99% in 0.001083076 secs.
  99.5% in 0.001183076 secs.
`

const sampleErrors = sampleOK + `
Error distribution:
  [3]	rpc error: code = Unavailable desc = etcdserver: leader changed
  [1]	context deadline exceeded
`

const sampleAllFailed = `
Error distribution:
  [50]	rpc error: code = Unavailable desc = connection refused
`

func TestParseBenchmarkOutput(t *testing.T) {
	m, err := ParseBenchmarkOutput(sampleOK)
	if err != nil {
		t.Fatal(err)
	}
	if m.Succeeded != 200 || m.Errors != 0 {
		t.Errorf("succeeded %d errors %d, want 200 0", m.Succeeded, m.Errors)
	}
	if m.RPS != 6998.9722709117395 || m.Average != 0.00014180951999999997 || m.TotalSecs != 0.028575624 {
		t.Errorf("summary parsed wrong: %+v", m)
	}
	if m.Percentiles["50"] != 0.000120071 || m.Percentiles["99"] != 0.001083076 || m.Percentiles["99.5"] != 0.001183076 {
		t.Errorf("percentiles parsed wrong: %v", m.Percentiles)
	}

	m, err = ParseBenchmarkOutput(sampleErrors)
	if err != nil {
		t.Fatal(err)
	}
	if m.Succeeded != 200 || m.Errors != 4 || len(m.ErrorKinds) != 2 {
		t.Errorf("with errors: succeeded %d errors %d kinds %v", m.Succeeded, m.Errors, m.ErrorKinds)
	}

	m, err = ParseBenchmarkOutput(sampleAllFailed)
	if err != nil {
		t.Fatal(err)
	}
	if m.Succeeded != 0 || m.Errors != 50 {
		t.Errorf("all failed: succeeded %d errors %d", m.Succeeded, m.Errors)
	}

	for name, bad := range map[string]string{
		"empty":        "",
		"garbage":      "panic: runtime error\ngoroutine 1 [running]:\n",
		"no rps":       strings.Replace(sampleOK, "Requests/sec:", "Requests/min:", 1),
		"no histogram": strings.Replace(sampleOK, "Response time histogram:", "Something else:", 1),
		"no latencies": sampleOK[:strings.Index(sampleOK, "Latency distribution:")],
		"no p99":       strings.Replace(sampleOK, "  99% in 0.001083076 secs.\n", "", 1),
		"bad number":   strings.Replace(sampleOK, "Average:\t0.000141", "Average:\tNaN", 1),
	} {
		if _, err := ParseBenchmarkOutput(bad); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestSummarizeMatchesReportDefinition(t *testing.T) {
	var lats []float64
	for i := 1; i <= 200; i++ {
		lats = append(lats, float64(i)/1000)
	}
	m := summarize(lats, map[string]int{"boom": 2}, 2*time.Second)
	if m.Succeeded != 200 || m.Errors != 2 || m.RPS != 100 {
		t.Errorf("counts: %+v", m)
	}
	// pkg/report: the first latency with at least p% of requests before it.
	if m.Percentiles["50"] != 0.101 || m.Percentiles["99"] != 0.199 {
		t.Errorf("percentiles: %v", m.Percentiles)
	}
	if math.Abs(m.Average-0.1005) > 1e-12 {
		t.Errorf("average %v", m.Average)
	}
}

func TestParseProcStatus(t *testing.T) {
	rss, hwm, err := parseProcStatus([]byte("Name:\tetcd\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t12\n"))
	if err != nil || rss != 40960*1024 || hwm != 51200*1024 {
		t.Fatalf("rss %d hwm %d err %v", rss, hwm, err)
	}
	if _, _, err := parseProcStatus([]byte("Name:\tx\n")); err == nil {
		t.Fatal("missing fields accepted")
	}
	if _, _, err := procStatus(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func TestFinishMarksFailuresAndComputesRoundRatios(t *testing.T) {
	refs := []System{{Name: "ref"}}
	ok := func(sys string, round int, v float64) RunResult {
		return RunResult{System: sys, Round: round, OK: true, Values: map[string]float64{"rps": v}}
	}
	defs := []metricDef{{"rps", "throughput", "req/s", true}}
	wr := WorkloadResult{Runs: []RunResult{ok("sut", 1, 30), ok("ref", 1, 10), ok("sut", 2, 40), ok("ref", 2, 40),
		ok("sut", 3, 20), ok("ref", 3, 10)}}
	wr.finish(defs, "sut", refs)
	if wr.Failed || len(wr.Metrics) != 1 {
		t.Fatalf("unexpected: %+v", wr)
	}
	r := wr.Metrics[0].Ratios["ref"]
	if r.Median != 2 || r.Min != 1 || r.Max != 3 {
		t.Errorf("ratios %+v, want median 2 min 1 max 3", r)
	}
	if s := wr.Metrics[0].BySystem["sut"]; s.Median != 30 || s.Min != 20 || s.Max != 40 {
		t.Errorf("sut stat %+v", s)
	}

	bad := WorkloadResult{Runs: []RunResult{ok("sut", 1, 30), {System: "ref", Round: 1, Error: "3 of 10 requests failed"}}}
	bad.finish(defs, "sut", refs)
	if !bad.Failed || len(bad.Metrics) != 0 || len(bad.Failures) != 1 {
		t.Fatalf("failed run averaged in: %+v", bad)
	}
}

// pids records every process the harness starts.
type pids struct {
	mu    sync.Mutex
	byPID map[int]string
}

func (p *pids) add(pid int, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byPID == nil {
		p.byPID = map[int]string{}
	}
	p.byPID[pid] = name
}

// checkGone fails the test if any recorded process, or any member of its
// process group, still exists (zombies included: the harness must reap).
func (p *pids) checkGone(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.byPID) == 0 {
		t.Fatal("no processes were recorded")
	}
	for pid, name := range p.byPID {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d (%s) still exists after Run returned (kill 0: %v)", pid, name, err)
		}
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d (%s) still has members after Run returned (kill 0: %v)", pid, name, err)
		}
	}
}

func (p *pids) count(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.byPID {
		if v == name {
			n++
		}
	}
	return n
}

// testConfig runs the system named by $CAIRNBENCH_SUT (default: etcd 3.6.16,
// so the harness is tested before cairn builds) against etcd 3.6.16.
func testConfig(t *testing.T, p *pids, workloads ...string) Config {
	t.Helper()
	wd, _ := os.Getwd()
	root, err := FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	sut := os.Getenv("CAIRNBENCH_SUT")
	if sut == "" {
		sut = "etcd-3.6.16"
	}
	sz := Modes["tiny"]
	return Config{RepoRoot: root, SUT: sut, Refs: []string{"3.6.16"}, Mode: "tiny", Sizes: sz,
		Workloads: workloads, OutDir: t.TempDir(), WorkRoot: t.TempDir(), Command: "go test",
		Log: testWriter{t}, OnStart: p.add}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// runClean runs cfg within timeout and checks that it succeeded and left no
// process and no file behind.
func runClean(t *testing.T, p *pids, cfg Config, timeout time.Duration) *Results {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.checkGone(t)
	checkWorkRootEmpty(t, cfg.WorkRoot)
	return res
}

func checkWorkRootEmpty(t *testing.T, root string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(root, "*"))
	if len(left) != 0 {
		t.Errorf("scratch files left behind: %v", left)
	}
}

// TestPlumbing runs the tiny mode end to end: servers start and stop, etcd's
// benchmark tool runs and its output parses, the harness's own generator
// runs, RSS and backend size are read, and both output files are written.
func TestPlumbing(t *testing.T) {
	t.Parallel() // with TestPlumbingShapesAndMaintenance: tiny numbers mean nothing anyway
	var p pids
	cfg := testConfig(t, &p, "put-1c", "range-s-100c", "txn-100c", "memory")
	res := runClean(t, &p, cfg, 2*time.Minute)
	if p.count("benchmark") == 0 {
		t.Error("etcd's benchmark tool never ran")
	}

	want := []string{floorName, "put-1c", rangeS1Name, "range-s-100c", "txn-100c", "memory"}
	checkResults(t, cfg, res, want)
	var put1 *WorkloadResult
	for i := range res.Workloads {
		if res.Workloads[i].Name == put1Name {
			put1 = &res.Workloads[i]
		}
	}
	if put1 == nil || len(put1.Metrics) < 2 || put1.Metrics[len(put1.Metrics)-2].Key != "floor_x" ||
		put1.Metrics[len(put1.Metrics)-1].Key != "rtt_floor_x" {
		t.Error("put-1c lacks the latency ÷ fsync floor and latency ÷ (round trip + floor) metrics")
	}
	md, err := os.ReadFile(filepath.Join(res.Dir, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"fsync floor", "mean latency ÷ fsync floor", "mean latency ÷ (range-s-1c mean + fsync floor)"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("results.md lacks %q", s)
		}
	}
}

// TestPlumbingShapesAndMaintenance runs the workloads driven by cairnbench's
// own generators and fills (k8s shape, prefix paging, reads under puts,
// memory after revisions, compaction and defrag under load) once each at
// tiny counts:
// every metric has a value on both sides, every secondary request stream
// (fill, lists, whole scans) is accounted for, and nothing failed.
func TestPlumbingShapesAndMaintenance(t *testing.T) {
	t.Parallel()
	var p pids
	want := []string{"range-l-under-put-100c", "range-s-under-put-100c", "k8s-shape", "range-prefix-paging",
		"memory-revisions", "compaction-under-load", "defrag-under-load"}
	cfg := testConfig(t, &p, want...)
	cfg.Sizes.Rounds = 1
	res := runClean(t, &p, cfg, 2*time.Minute)
	checkResults(t, cfg, res, want)
	wantParts := map[string]string{"range-l-under-put-100c": "puts", "range-s-under-put-100c": "puts",
		"k8s-shape": "lists", "range-prefix-paging": "full scans", "compaction-under-load": "fill", "defrag-under-load": "fill"}
	for _, wr := range res.Workloads {
		for _, rr := range wr.Runs {
			if rr.Measurement == nil || rr.Expected == 0 || rr.Measurement.Succeeded != rr.Expected {
				t.Errorf("%s on %s: measurement %+v, expected %d", wr.Name, rr.System, rr.Measurement, rr.Expected)
			}
			name, ok := wantParts[wr.Name]
			if !ok {
				continue
			}
			if len(rr.Parts) != 1 || rr.Parts[0].Name != name || rr.Parts[0].Measurement == nil ||
				rr.Parts[0].Expected == 0 || rr.Parts[0].Measurement.Succeeded != rr.Parts[0].Expected {
				t.Errorf("%s on %s: parts %+v, want %q fully accounted for", wr.Name, rr.System, rr.Parts, name)
			}
		}
	}
}

// checkResults checks that res holds the workloads want in order, none
// failed, every metric has a positive finite value per round on both sides
// and a ratio, and both output files are written and parse.
// mayBeZero lists the count metrics for which 0 is a measurement (no put
// failed, no election happened).
var mayBeZero = map[string]bool{"failed_puts": true, "elections_grow": true, "elections_shrink": true}

func checkResults(t *testing.T, cfg Config, res *Results, want []string) {
	t.Helper()
	if len(res.Workloads) != len(want) {
		t.Fatalf("workloads %d, want %d", len(res.Workloads), len(want))
	}
	ref := "etcd-3.6.16"
	for i, wr := range res.Workloads {
		if wr.Name != want[i] {
			t.Errorf("workload %d is %s, want %s", i, wr.Name, want[i])
		}
		if wr.Failed {
			t.Errorf("%s failed: %v", wr.Name, wr.Failures)
			continue
		}
		if len(wr.Runs) == 0 || len(wr.Metrics) == 0 {
			t.Errorf("%s: %d runs, %d metrics", wr.Name, len(wr.Runs), len(wr.Metrics))
		}
		for _, mr := range wr.Metrics {
			for sys, st := range mr.BySystem {
				positive := st.Median > 0 || (mayBeZero[mr.Key] && st.Median == 0)
				if len(st.Values) != cfg.Sizes.Rounds || !positive || math.IsInf(st.Median, 0) {
					t.Errorf("%s %s %s: %+v", wr.Name, mr.Key, sys, st)
				}
			}
			if wr.Name == floorName {
				continue
			}
			if len(mr.BySystem) != 2 {
				t.Errorf("%s %s: values for %d systems, want 2", wr.Name, mr.Key, len(mr.BySystem))
			}
			if mayBeZero[mr.Key] {
				continue // a ratio exists only when the reference's count is not 0
			}
			if r := mr.Ratios[ref]; len(r.Values) != cfg.Sizes.Rounds || !(r.Median > 0) || math.IsInf(r.Median, 0) {
				t.Errorf("%s %s ratio: %+v", wr.Name, mr.Key, r)
			}
		}
	}

	b, err := os.ReadFile(filepath.Join(res.Dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if len(back.Workloads) != len(want) || back.Incomplete != "" {
		t.Errorf("results.json: %d workloads, incomplete %q", len(back.Workloads), back.Incomplete)
	}
	md, err := os.ReadFile(filepath.Join(res.Dir, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(want, "| workload | metric |") {
		if !strings.Contains(string(md), s) {
			t.Errorf("results.md lacks %q", s)
		}
	}
	if strings.Contains(string(md), "**FAILED") {
		t.Errorf("results.md reports a failure:\n%s", md)
	}
}

// TestCancelStopsEverything cancels the run while the benchmark tool is
// loading a server, as Ctrl-C does: Run must return promptly, having killed
// and reaped every process, removed its scratch dir and written partial
// results.
func TestCancelStopsEverything(t *testing.T) {
	var p pids
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	cfg := testConfig(t, &p, "put-100c")
	cfg.Sizes.Put100 = 10_000_000 // would run for minutes
	cfg.OnStart = func(pid int, name string) {
		p.add(pid, name)
		if name == "benchmark" {
			once.Do(cancel)
		}
	}
	start := time.Now()
	res, err := Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("Run took %s to stop after cancel", d)
	}
	p.checkGone(t)
	checkWorkRootEmpty(t, cfg.WorkRoot)
	if res == nil || res.Incomplete == "" {
		t.Fatal("no partial results marked incomplete")
	}
	if _, err := os.Stat(filepath.Join(res.Dir, "results.json")); err != nil {
		t.Error(err)
	}
}

// TestBrokenServerIsMarkedFailed uses a "server" that exits at once: the
// workload must be marked failed, not averaged, and the run still reported.
func TestBrokenServerIsMarkedFailed(t *testing.T) {
	var p pids
	cfg := testConfig(t, &p, "range-s-1c")
	bin := filepath.Join(t.TempDir(), "broken-server")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'not a server' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.SUT = bin
	cfg.Sizes.Rounds = 1
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.checkGone(t)
	if len(res.Workloads) != 1 || !res.Workloads[0].Failed || len(res.Workloads[0].Metrics) != 0 {
		t.Fatalf("broken server not marked failed: %+v", res.Workloads)
	}
	md := res.Markdown()
	if !strings.Contains(md, "**FAILED**") || !strings.Contains(md, "exited during startup") {
		t.Errorf("results.md does not show the failure:\n%s", md)
	}
}

func TestParseProcCPU(t *testing.T) {
	// utime 250 and stime 50 ticks; the command name holds a space and a ')'.
	stat := "4242 (cairn x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 100 0 0\n"
	d, err := parseProcCPU([]byte(stat))
	if err != nil || d != 3*time.Second {
		t.Fatalf("parseProcCPU = %v, %v; want 3s", d, err)
	}
	if _, err := parseProcCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("short stat accepted")
	}
	if d, err := procCPU(os.Getpid()); err != nil || d < 0 {
		t.Fatalf("procCPU(self) = %v, %v", d, err)
	}
}
