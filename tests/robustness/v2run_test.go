package robustness

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/cairnkv/cairn/tests/framework"
)

// TargetCairnV2 is a cairn cluster driven by the v2 register workload
// instead of the v3 traffic (etcd 3.6 does not serve v2).
const TargetCairnV2 = "cairn-v2"

// v2Stats are the v2 workload's numbers for the report.
type v2Stats struct {
	Watchers, Polls, Events int
	Placed                  int // unknown compare-and-deletes placed by the history
}

// runV2Scenario is runScenario for the v2 register workload: the same
// cluster, fault and recovery, with v2 clients, waitIndex watchers and a
// history watcher, then the v2 checks.
func runV2Scenario(t testing.TB, sc scenario, cfg runConfig) *runResult {
	started := time.Now()
	res := &runResult{Scenario: sc, Dir: runDir(t), Profile: "v2"}
	defer func() { res.Duration = time.Since(started) }()
	if sc.Fault == FaultSnapshotRestore {
		// Its check reads the v3 history, which a v2 run does not
		// write: refused rather than run unchecked.
		res.Err = fmt.Errorf("%s is not checked in v2 runs", sc.Fault)
		return res
	}
	rnd := rand.New(rand.NewPCG(sc.Seed, 0x5eed))
	res.Flags = memberFlags(cfg, rnd)
	if sc.Fault == FaultBlackholeSnapshot {
		res.Flags = snapshotFlags(res.Flags)
	}
	vcfg := defaultV2
	vcfg.Timeout = []time.Duration{250 * time.Millisecond, 2 * time.Second}[rnd.IntN(2)]
	res.Timeout = vcfg.Timeout
	c, err := startCluster(t, res.Dir, binaries(t, TargetCairn), sc.Members, res.Flags, cfg.Env)
	if err != nil {
		res.Err = fmt.Errorf("start: %w", err)
		return res
	}
	rec := &recorder{start: time.Now()}
	vrec := &v2Recorder{rec: rec}
	in := &injector{c: c, rec: rec, rnd: rnd, timing: faultTiming{Election: cfg.Election}}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer hc.CloseIdleConnections()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	id := 0
	for range vcfg.ClientsPerMember {
		for _, m := range c.members {
			vc := &v2Client{id: id, member: m.Name, base: m.Client, hc: hc, cfg: vcfg, rec: vrec,
				rnd: rand.New(rand.NewPCG(sc.Seed, uint64(id))), last: map[string]string{}, idx: map[string]uint64{}}
			id++
			wg.Add(1)
			go func() { defer wg.Done(); vc.run(stop) }()
		}
	}
	// Watchers stop with the traffic; the history watcher goes on to
	// the final index.
	var final atomic.Uint64
	until := func() uint64 { return final.Load() }
	var ws []*v2Watcher
	wstop := make(chan struct{})
	var wwg sync.WaitGroup
	for i := range vcfg.WatchersPerMember * len(c.members) {
		m := c.members[i%len(c.members)]
		w := &v2Watcher{id: i, member: m.Name, base: m.Client, key: v2Key(i % vcfg.Keys), hc: hc,
			rnd: rand.New(rand.NewPCG(sc.Seed, 0x2000+uint64(i))), clock: rec}
		ws = append(ws, w)
		wwg.Add(1)
		go func() { defer wwg.Done(); w.run(wstop, func() uint64 { return 0 }) }()
	}
	var bases []string
	for _, m := range c.members {
		bases = append(bases, m.Client)
	}
	hw := &v2HistoryWatcher{bases: bases, hc: hc, clock: rec, events: map[uint64]v2Event{}}
	hstop := make(chan struct{})
	hdone := make(chan struct{})
	go func() { defer close(hdone); hw.run(hstop, until) }()
	in.event("v2 traffic started: %d clients, %d watchers", id, len(ws))

	faultPhase(res, sc, cfg, c, rec, in, cfg.LoadFloor/2)
	close(stop)
	wg.Wait()
	close(wstop)
	wwg.Wait()
	in.event("traffic stopped")

	// Liveness and the end of the history: a last set must succeed.
	last := &v2Client{id: id, member: c.members[0].Name, base: c.members[0].Client, hc: hc, rec: vrec,
		cfg: v2Config{Timeout: 10 * time.Second}, last: map[string]string{}, idx: map[string]uint64{}}
	o := last.do(v2Set, v2Key(0))
	vrec.add(o)
	in.event("final set: %s", o.describe())
	if o.Err != "" {
		res.add(anomaly{anomNoRecovery, "the final set failed: " + o.Err})
		close(hstop)
	} else {
		final.Store(o.Index)
		select {
		case <-hdone:
		case <-time.After(30 * time.Second):
			close(hstop)
		}
	}
	<-hdone
	h := &v2History{Events: hw.events, Final: final.Load()}
	if hw.lost != "" || (h.Final > 0 && hw.next <= h.Final) {
		res.Err = fmt.Errorf("the history watcher did not read the whole v2 history (to %d, read to %d): %s", h.Final, hw.next-1, hw.lost)
	}
	res.Revisions = int64(h.Final)
	if h.Final > 0 {
		res.add(checkV2Converged(c.members, hc, h, 30*time.Second)...)
	}
	res.add(checkLogs(c)...)

	ops := vrec.history()
	res.Ops = len(ops)
	for _, o := range ops {
		switch {
		case o.Unknown:
			res.Unknown++
		case o.Err != "" && o.Code != 100 && o.Code != 101:
			res.FailedReads++
		default:
			res.OK++
		}
	}
	var lin linearizability
	if res.Err == nil && h.Final > 0 {
		kept, anoms := resolveV2(ops, h)
		res.add(anoms...)
		for _, o := range ops {
			if strings.HasPrefix(o.Resolved, "took effect") {
				res.UnknownApplied++
				res.UnknownBounded++
			}
		}
		anoms, polls := checkV2Watchers(ws, h, ops)
		res.add(anoms...)
		res.V2 = &v2Stats{Watchers: len(ws), Polls: polls, Events: len(h.Events)}
		res.add(checkV2Order(kept)...)
		lin = checkV2Linearizable(kept, cfg.CheckTimeout)
		res.Checked, res.CheckerTime = lin.Ops, lin.Duration
		switch lin.Result {
		case porcupine.Illegal:
			res.add(anomaly{anomNotLinearizable, "see history.txt and linearizability.html"})
		case porcupine.Unknown:
			res.add(anomaly{anomCheckerTimeout, fmt.Sprintf("no answer in %v", cfg.CheckTimeout)})
		}
		in.event("validated: v2 index %d, %d ops checked in %v, %d watch polls", h.Final, res.Checked, res.CheckerTime, polls)
	}
	slices.SortStableFunc(in.events, func(a, b Event) int { return cmp.Compare(a.At, b.At) })
	res.Events = in.events
	if err := writeV2History(filepath.Join(res.Dir, "history.txt"), res, ops, ws, h); err != nil {
		t.Logf("write history: %v", err)
	}
	if lin.Result == porcupine.Illegal {
		path := filepath.Join(res.Dir, "linearizability.html")
		if err := porcupine.VisualizePath(v2Model.ToModel(), lin.Info, path); err == nil {
			t.Logf("porcupine's visualization: %s", path)
		}
	}
	return res
}

// checkV2Converged waits until every member's store is at the final index,
// then compares each member's registers (a local, non-quorum read) with
// the history's final state.
func checkV2Converged(members []*framework.Member, hc *http.Client, h *v2History, timeout time.Duration) []anomaly {
	want := map[string]string{}
	for i := uint64(1); i <= h.Final; i++ {
		ev, ok := h.Events[i]
		if !ok {
			continue
		}
		if ev.Action == "compareAndDelete" || ev.Action == "delete" {
			delete(want, ev.Key)
		} else {
			want[ev.Key] = ev.Value
		}
	}
	var anoms []anomaly
	for _, m := range members {
		deadline := time.Now().Add(timeout)
		var last string
		for {
			got, idx, err := v2Registers(hc, m.Client)
			if err == nil && idx >= h.Final {
				if !mapsEqual(got, want) {
					anoms = append(anoms, anomaly{anomNoConvergence, fmt.Sprintf("%s's v2 registers at index %d: %v, the history's: %v", m.Name, idx, got, want)})
				}
				break
			}
			last = fmt.Sprintf("index %d, error %v", idx, err)
			if time.Now().After(deadline) {
				anoms = append(anoms, anomaly{anomNoConvergence, fmt.Sprintf("%s did not reach v2 index %d in %v: %s", m.Name, h.Final, timeout, last)})
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return anoms
}

// v2Registers reads every register under v2Dir from one member (local).
func v2Registers(hc *http.Client, base string) (map[string]string, uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := v2Call(ctx, hc, http.MethodGet, base, v2Dir, url.Values{"recursive": {"true"}})
	if err != nil {
		return nil, 0, err
	}
	out := map[string]string{}
	if r.ErrorCode == 100 {
		return out, r.Index, nil
	}
	if r.ErrorCode != 0 || r.Node == nil {
		return nil, r.header, fmt.Errorf("status %d: %d %s", r.status, r.ErrorCode, r.Message)
	}
	for _, n := range r.Node.Nodes {
		if n.Value != nil {
			out[n.Key] = *n.Value
		}
	}
	return out, r.header, nil
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// writeV2History writes the run's ops, watch polls and history events.
func writeV2History(path string, res *runResult, ops []*v2Op, ws []*v2Watcher, h *v2History) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "# %s\n# flags: %s\n# %s\n", res.Scenario, strings.Join(res.Flags, " "), strings.ReplaceAll(res.summary(), "\n", "\n# "))
	type line struct {
		at   time.Duration
		text string
	}
	var lines []line
	for _, o := range ops {
		lines = append(lines, line{o.Call, o.String()})
	}
	for _, e := range res.Events {
		lines = append(lines, line{e.At, fmt.Sprintf("====== %.3f %s", e.At.Seconds(), e.What)})
	}
	for _, w := range ws {
		for _, p := range w.polls {
			lines = append(lines, line{p.Call, fmt.Sprintf("watch %.3f %.3f %s from %d → %s %s=%q@%d", p.Call.Seconds(), p.Event.At.Seconds(), w, p.From, p.Event.Action, p.Event.Key, p.Event.Value, p.Event.Index)})
		}
	}
	slices.SortStableFunc(lines, func(a, b line) int { return cmp.Compare(a.at, b.at) })
	for _, l := range lines {
		fmt.Fprintln(f, l.text)
	}
	fmt.Fprintf(f, "# the v2 history (index: action key=value, prev, seen at):\n")
	for i := uint64(1); i <= h.Final; i++ {
		ev := h.Events[i]
		fmt.Fprintf(f, "%d: %s %s=%q prev %q %.3f\n", i, ev.Action, ev.Key, ev.Value, ev.Prev, ev.At.Seconds())
	}
	return nil
}
