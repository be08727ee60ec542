package robustness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tests/framework"
)

// TestRobustnessCampaign is the long campaign: CAIRN_ROBUSTNESS=long runs
// rounds of scenarios with fresh seeds until CAIRN_ROBUSTNESS_DURATION
// (default 1h) has passed, then writes a report. Each round runs every
// fault kind on 3 cairn members, then one etcd 3.6.16, one mixed, one
// 1-member and one 5-member cairn run whose faults rotate with the round.
// Environment:
//
//	CAIRN_ROBUSTNESS=long            required
//	CAIRN_ROBUSTNESS_DURATION=10m    how long to start new runs (Go duration)
//	CAIRN_ROBUSTNESS_SEED=N          first seed (default: from the clock); run i uses N+i
//	CAIRN_ROBUSTNESS_TARGETS=cairn,etcd,mixed,cairn-v2   which targets take part
//	CAIRN_ROBUSTNESS_FAULTS=soak     only these faults (comma list; default all)
//	CAIRN_ROBUSTNESS_REPORT=path     report file (default <tmp>/cairn-robustness/report.md)
//
// go test's own -timeout must exceed the duration (use -timeout 0).
func TestRobustnessCampaign(t *testing.T) {
	if os.Getenv("CAIRN_ROBUSTNESS") != "long" {
		t.Skip("set CAIRN_ROBUSTNESS=long to run the campaign")
	}
	duration := time.Hour
	if s := os.Getenv("CAIRN_ROBUSTNESS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("CAIRN_ROBUSTNESS_DURATION: %v", err)
		}
		duration = d
	}
	seed := uint64(time.Now().UnixNano() % 1e9)
	if s := os.Getenv("CAIRN_ROBUSTNESS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CAIRN_ROBUSTNESS_SEED: %v", err)
		}
		seed = n
	}
	targets := map[string]bool{TargetCairn: true, TargetEtcd: true, TargetMixed: true, TargetCairnV2: true}
	if s := os.Getenv("CAIRN_ROBUSTNESS_TARGETS"); s != "" {
		clear(targets)
		for _, tg := range strings.Split(s, ",") {
			targets[strings.TrimSpace(tg)] = true
		}
	}
	var faultSet map[string]bool // nil: every fault
	if s := os.Getenv("CAIRN_ROBUSTNESS_FAULTS"); s != "" {
		faultSet = map[string]bool{}
		for _, f := range strings.Split(s, ",") {
			faultSet[strings.TrimSpace(f)] = true
		}
	}
	reportPath := os.Getenv("CAIRN_ROBUSTNESS_REPORT")
	if reportPath == "" {
		reportPath = filepath.Join(os.TempDir(), "cairn-robustness", "report.md")
	}
	framework.FailpointBinaries(t) // build before the clock starts

	camp := &campaign{start: time.Now(), firstSeed: seed, duration: duration}
	next := seed
	for round := 0; time.Since(camp.start) < duration; round++ {
		var scs []scenario
		for _, f := range append(allFaults[:len(allFaults):len(allFaults)], productFaults...) {
			scs = append(scs, scenario{TargetCairn, 3, f, 0})
		}
		one := faultsFor(1)
		scs = append(scs,
			scenario{TargetEtcd, 3, allFaults[round%len(allFaults)], 0},
			scenario{TargetMixed, 3, allFaults[(round+3)%len(allFaults)], 0},
			scenario{TargetCairn, 1, one[round%len(one)], 0},
			scenario{TargetCairn, 5, allFaults[(round+5)%len(allFaults)], 0})
		scs = append(scs, campaignExtras(round)...)
		for _, sc := range scs {
			if !targets[sc.Target] || (faultSet != nil && !faultSet[sc.Fault]) || time.Since(camp.start) >= duration {
				continue
			}
			sc.Seed = next
			next++
			t.Run(sc.String(), func(t *testing.T) {
				res := runScenario(t, sc, longConfig)
				camp.add(res)
				if res.failed() {
					t.Error(res.summary())
					return
				}
				t.Log(res.summary())
			})
		}
	}
	camp.end = time.Now()
	report := camp.report()
	if err := os.MkdirAll(filepath.Dir(reportPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reportPath, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("report written to %s:\n%s", reportPath, report)
}

// longConfig is shortConfig with porcupine given the plan's 5 minutes and
// a full second of traffic after recovery.
var longConfig = func() runConfig {
	c := shortConfig
	c.CheckTimeout = 5 * time.Minute
	c.Cooldown = time.Second
	return c
}()

// campaign accumulates run results for the report.
type campaign struct {
	start, end time.Time
	duration   time.Duration
	firstSeed  uint64
	results    []*runResult
}

func (c *campaign) add(r *runResult) { c.results = append(c.results, r) }

// report renders the campaign's numbers as Markdown.
func (c *campaign) report() string {
	var b strings.Builder
	commit := "unknown"
	if out, err := exec.Command("git", "-C", framework.RepoRoot(), "rev-parse", "--short", "HEAD").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	failed := 0
	for _, r := range c.results {
		if r.failed() {
			failed++
		}
	}
	fmt.Fprintf(&b, "- commit %s, %s/%s, %d CPUs, started %s, wall time %v",
		commit, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), c.start.UTC().Format(time.RFC3339),
		c.end.Sub(c.start).Round(time.Second))
	if c.duration > 0 {
		fmt.Fprintf(&b, " (new runs for %v)", c.duration)
	}
	b.WriteString("\n")
	last := c.firstSeed
	if n := len(c.results); n > 0 {
		last = c.results[n-1].Scenario.Seed
	}
	fmt.Fprintf(&b, "- runs: %d (%d failed), seeds %d–%d\n\n", len(c.results), failed, c.firstSeed, last)

	// Runs per scenario.
	type cell struct{ runs, failed int }
	perScenario := map[string]*cell{}
	faults := map[string][2]int{} // kind → injected, confirmed
	for _, r := range c.results {
		k := fmt.Sprintf("%s-%d / %s", r.Scenario.Target, r.Scenario.Members, r.Scenario.Fault)
		if perScenario[k] == nil {
			perScenario[k] = &cell{}
		}
		perScenario[k].runs++
		if r.failed() {
			perScenario[k].failed++
		}
		f := faults[r.Scenario.Fault]
		f[0]++
		if r.FaultConfirmed {
			f[1]++
		}
		faults[r.Scenario.Fault] = f
	}
	b.WriteString("| scenario (target-size / fault) | runs | failed |\n|---|---:|---:|\n")
	for _, k := range sortedKeys(perScenario) {
		fmt.Fprintf(&b, "| %s | %d | %d |\n", k, perScenario[k].runs, perScenario[k].failed)
	}
	b.WriteString("\n| fault | injected | confirmed |\n|---|---:|---:|\n")
	for _, k := range sortedKeys(faults) {
		fmt.Fprintf(&b, "| %s | %d | %d |\n", k, faults[k][0], faults[k][1])
	}

	// Operations.
	var ops, ok, failedReads, unknown, applied, bounded, checked, leaseEnds int
	var ws watchStats
	var checkTimes []time.Duration
	var compactions, compactWatches, txns, leaseAnswers int
	var past pastReadStats
	profiles := map[string]int{}
	for _, r := range c.results {
		txns += r.Txns
		past.add(r.PastReads)
		leaseAnswers += r.LeaseAnswers
		profiles[strings.TrimSuffix(r.Profile, " + compaction")]++
		ops += r.Ops
		ok += r.OK
		failedReads += r.FailedReads
		unknown += r.Unknown
		applied += r.UnknownApplied
		bounded += r.UnknownBounded
		checked += r.Checked
		leaseEnds += r.LeaseEnds
		ws.Watchers += r.Watch.Watchers
		ws.Sessions += r.Watch.Sessions
		ws.Resumed += r.Watch.Resumed
		ws.Compacted += r.Watch.Compacted
		compactions += r.Compactions
		compactWatches += r.CompactWatches
		ws.Responses += r.Watch.Responses
		ws.Events += r.Watch.Events
		ws.Progress += r.Watch.Progress
		if r.Checked > 0 {
			checkTimes = append(checkTimes, r.CheckerTime)
		}
	}
	fmt.Fprintf(&b, "\n- operations recorded: %d (%d ok, %d failed reads, %d writes of unknown outcome, %d of them found applied)\n", ops, ok, failedReads, unknown, applied)
	fmt.Fprintf(&b, "- of the writes found applied, %d bounded in time by a watcher's receipt of their event\n", bounded)
	fmt.Fprintf(&b, "- operations checked for linearizability: %d (lease-end deletions included)\n", checked)
	fmt.Fprintf(&b, "- multi-op txns answered and checked: %d\n", txns)
	fmt.Fprintf(&b, "- stale gets (a linearizable get at a past revision) checked at their revision: %d, and %d answers \"compacted\" checked against the compactions sent\n", past.Stale, past.StaleCompacted)
	fmt.Fprintf(&b, "- serializable gets and lists checked at their header revision: %d (%d of them sent after another answer of the same member process, checked not to go back)\n", past.Serial, past.SerialOrdered)
	fmt.Fprintf(&b, "- leases whose end deleted keys: %d; LeaseTimeToLive and LeaseLeases answers checked: %d\n", leaseEnds, leaseAnswers)
	var pnames []string
	for p := range profiles {
		pnames = append(pnames, p)
	}
	slices.Sort(pnames)
	b.WriteString("- runs by traffic profile:")
	for _, p := range pnames {
		fmt.Fprintf(&b, " %s %d;", p, profiles[p])
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "- compactions sent by the traffic: %d (%d of them checked by a watch from their own revision)\n", compactions, compactWatches)
	fmt.Fprintf(&b, "- watch: %d watchers, %d sessions (%d of them resumptions; %d sessions cancelled as compacted, correctly), %d responses, %d events and %d progress notifications checked\n",
		ws.Watchers, ws.Sessions, ws.Resumed, ws.Compacted, ws.Responses, ws.Events, ws.Progress)
	b.WriteString(extrasReport(c.results))
	if len(checkTimes) > 0 {
		slices.Sort(checkTimes)
		fmt.Fprintf(&b, "- checker time per run: p50 %v, max %v; checker timeouts: %d\n",
			checkTimes[len(checkTimes)/2].Round(time.Millisecond), checkTimes[len(checkTimes)-1].Round(time.Millisecond),
			c.count(anomCheckerTimeout))
	}

	// Anomalies.
	kinds := []string{anomNotLinearizable, anomCheckerTimeout, anomLostWrite, anomWrongRevision, anomFailedCASApplied,
		anomDuplicateWrite, anomPhantomWrite, anomRevisionHistory, anomRevisionOrder, anomNoConvergence,
		anomHashMismatch, anomNoRecovery, anomLogPanic, anomLowLoad, anomFaultNotApplied, anomReadAtRevision,
		anomWatchOrder, anomWatchDuplicate, anomWatchGap, anomWatchAtomic, anomWatchBookmark, anomWatchEvent,
		anomWatchPrevKV, anomWatchStart, anomWatchCompact, anomWatchCompactEdge, anomWatchStuck,
		anomLeaseSplit, anomLeaseEarly, anomLeaseLeftKey, anomLeaseRevokeRev, anomLeaseAnswer, anomV2HistoryGap, anomV2Watch, anomRestore}
	kinds = append(kinds, pastReadKinds...)
	b.WriteString("\n| anomaly | count |\n|---|---:|\n")
	for _, k := range kinds {
		fmt.Fprintf(&b, "| %s | %d |\n", k, c.count(k))
	}
	harness := 0
	for _, r := range c.results {
		if r.Err != nil {
			harness++
		}
	}
	fmt.Fprintf(&b, "| harness errors (run could not be completed) | %d |\n", harness)
	if failed > 0 {
		b.WriteString("\nFailed runs (data dirs, logs and history kept):\n\n")
		for _, r := range c.results {
			if r.failed() {
				fmt.Fprintf(&b, "- %s: %s\n", r.Dir, strings.ReplaceAll(r.summary(), "\n", "\n  "))
			}
		}
	}
	return b.String()
}

// count is the number of anomalies of kind over all runs.
func (c *campaign) count(kind string) int {
	n := 0
	for _, r := range c.results {
		for _, a := range r.Anomalies {
			if a.Kind == kind {
				n++
			}
		}
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
