package robustness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// Targets a scenario runs on.
const (
	TargetCairn = "cairn" // every member cairn
	TargetEtcd  = "etcd"  // every member etcd 3.6.16: keeps the checkers honest
	TargetMixed = "mixed" // cairn and etcd members alternating (m1 cairn, m2 etcd, ...)
)

// scenario is one run: a target, a cluster size, one fault and a seed that
// fixes every random choice the harness makes (member flags, fault target
// and timing, traffic).
type scenario struct {
	Target  string
	Members int
	Fault   string
	Seed    uint64
}

func (s scenario) String() string {
	return fmt.Sprintf("%s-%d/%s/seed-%d", s.Target, s.Members, s.Fault, s.Seed)
}

// runConfig holds what does not vary by seed.
type runConfig struct {
	Traffic      trafficConfig
	Watch        watchConfig
	Warmup       time.Duration // traffic before the fault
	Cooldown     time.Duration // traffic after every member is ready again
	CheckTimeout time.Duration // porcupine's limit; reaching it fails the run
	LoadFloor    float64       // successful ops/s before the fault, at least
	Election     time.Duration // --election-timeout (heartbeat a tenth of it)
	Env          []string      // the members' extra environment (the seeded-bug self-tests' hooks)
	FixedTraffic bool          // keep Traffic: no profile chosen by seed
}

var shortConfig = runConfig{
	Traffic:      defaultTraffic,
	Watch:        defaultWatch,
	Warmup:       1500 * time.Millisecond,
	Cooldown:     500 * time.Millisecond,
	CheckTimeout: time.Minute,
	LoadFloor:    100,
	Election:     time.Second,
}

// runResult is what a run did and found.
type runResult struct {
	Scenario       scenario
	Flags          []string
	Timeout        time.Duration // per request
	Profile        string        // traffic profile
	Compactions    int           // Compact requests the traffic sent
	CompactWatches int           // watches from a compact revision checked
	Dir            string
	Ops            int           // operations recorded
	OK             int           // succeeded
	FailedReads    int           // reads that errored (not checked)
	Unknown        int           // writes that errored or timed out
	UnknownApplied int           // ... of which the store shows took effect
	UnknownBounded int           // ... of which a watcher saw, which bounds their return time
	LeaseEnds      int           // leases whose end deleted keys
	Txns           int           // multi-op txns answered (either branch)
	LeaseAnswers   int           // LeaseTimeToLive and LeaseLeases answers checked
	PastReads      pastReadStats // stale gets and serializable reads checked (pastread_test.go)
	Watch          watchStats
	Checked        int // operations porcupine checked
	Revisions      int64
	FaultConfirmed bool
	CheckerTime    time.Duration
	Duration       time.Duration
	Anomalies      []anomaly
	Err            error    // the harness itself failed
	Events         []Event  // what the harness did, when
	V2             *v2Stats // the v2 register workload's numbers (v2traffic_test.go)
	restores       []*restoreCheck
}

func (r *runResult) add(a ...anomaly) { r.Anomalies = append(r.Anomalies, a...) }

// failed says whether the run must fail its test.
func (r *runResult) failed() bool { return r.Err != nil || len(r.Anomalies) > 0 }

// faultPhase is the middle of a run, the same for every workload: the
// warm-up (whose rate must reach floor), the fault, the wait for every
// member to serve linearizable reads again, and the cool-down.
func faultPhase(res *runResult, sc scenario, cfg runConfig, c *cluster, rec *recorder, in *injector, floor float64) {
	time.Sleep(cfg.Warmup)
	if rate := float64(rec.okOps.Load()) / cfg.Warmup.Seconds(); rate < floor {
		res.add(anomaly{anomLowLoad, fmt.Sprintf("%.0f successful ops/s before the fault, floor %.0f", rate, floor)})
	}
	confirmed, err := in.inject(sc.Fault)
	res.FaultConfirmed = confirmed
	if err != nil {
		res.Err = fmt.Errorf("fault %s: %w", sc.Fault, err)
	} else if !confirmed {
		res.add(anomaly{anomFaultNotApplied, sc.Fault})
	}
	if err := c.waitAllReady(30 * time.Second); err != nil {
		res.add(anomaly{anomNoRecovery, err.Error()})
	}
	in.event("every member serves linearizable reads")
	time.Sleep(cfg.Cooldown)
}

// onlyLowLoad says whether the run failed only for traffic under the load
// floor: its checks found nothing, but the run does not count.
func (r *runResult) onlyLowLoad() bool {
	if r.Err != nil || len(r.Anomalies) == 0 {
		return false
	}
	for _, a := range r.Anomalies {
		if a.Kind != anomLowLoad {
			return false
		}
	}
	return true
}

// summary is a short account of the run.
func (r *runResult) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s traffic, request timeout %v): %d ops (%d ok, %d failed reads, %d unknown writes, %d of them applied, %d seen by a watcher), %d checked in %v, %d revisions, %d multi-op txns, %d lease ends, %d lease answers, %d stale gets (%d more answered compacted), %d serializable reads (%d ordered after an answer of their member process), %d compactions (%d checked by a watch from their revision); watch: %d watchers, %d sessions (%d cancelled as compacted), %d responses, %d events, %d progress notifications; fault confirmed %t, %v",
		r.Scenario, r.Profile, r.Timeout, r.Ops, r.OK, r.FailedReads, r.Unknown, r.UnknownApplied, r.UnknownBounded, r.Checked, r.CheckerTime.Round(time.Millisecond),
		r.Revisions, r.Txns, r.LeaseEnds, r.LeaseAnswers, r.PastReads.Stale, r.PastReads.StaleCompacted, r.PastReads.Serial, r.PastReads.SerialOrdered, r.Compactions, r.CompactWatches, r.Watch.Watchers, r.Watch.Sessions, r.Watch.Compacted, r.Watch.Responses, r.Watch.Events, r.Watch.Progress,
		r.FaultConfirmed, r.Duration.Round(time.Millisecond))
	if r.V2 != nil {
		fmt.Fprintf(&b, "; v2: %d events in the history, %d watchers, %d waitIndex polls checked", r.V2.Events, r.V2.Watchers, r.V2.Polls)
	}
	if r.Err != nil {
		fmt.Fprintf(&b, "\n  harness error: %v", r.Err)
	}
	for i, a := range r.Anomalies {
		if i == 10 {
			fmt.Fprintf(&b, "\n  ... %d more", len(r.Anomalies)-i)
			break
		}
		fmt.Fprintf(&b, "\n  ANOMALY %s", a)
	}
	return b.String()
}

// binaries are the member binaries of a target.
func binaries(t testing.TB, target string) []string {
	switch target {
	case TargetCairn, TargetCairnV2:
		return []string{framework.CairnFailpoints(t)}
	case TargetEtcd:
		return []string{refs.EtcdRelease(t, refs.Default).Etcd}
	case TargetMixed:
		return []string{framework.CairnFailpoints(t), refs.EtcdRelease(t, refs.Default).Etcd}
	}
	t.Fatalf("unknown target %q", target)
	return nil
}

// memberFlags picks the members' flags from the seed: the election timeout
// of cfg, and how often they snapshot and how much log they keep for slow
// followers (small values make a restarted or cut-off member catch up by
// snapshot).
func memberFlags(cfg runConfig, rnd *rand.Rand) []string {
	snapCount := []int{50, 100, 1000, 10000}[rnd.IntN(4)]
	catchup := []int{100, 5000}[rnd.IntN(2)]
	return []string{
		"--heartbeat-interval", fmt.Sprint(cfg.Election.Milliseconds() / 10),
		"--election-timeout", fmt.Sprint(cfg.Election.Milliseconds()),
		"--snapshot-count", fmt.Sprint(snapCount),
		"--snapshot-catchup-entries", fmt.Sprint(catchup),
	}
}

// runDir makes a directory under os.TempDir() named after the test for the
// members' data dirs and logs and the history. It is removed when the test
// passes and kept when it fails. Call it before starting members, so its
// cleanup runs after theirs.
func runDir(t testing.TB) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	dir := filepath.Join(os.TempDir(), "cairn-robustness", name)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept data dirs, logs and history in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// runScenario starts a cluster, drives traffic, injects the fault, lets the
// cluster recover, and checks the history and the members.
func runScenario(t testing.TB, sc scenario, cfg runConfig) *runResult {
	if sc.Target == TargetCairnV2 {
		return runV2Scenario(t, sc, cfg)
	}
	started := time.Now()
	res := &runResult{Scenario: sc, Dir: runDir(t)}
	defer func() { res.Duration = time.Since(started) }()
	rnd := rand.New(rand.NewPCG(sc.Seed, 0x5eed))
	res.Flags = memberFlags(cfg, rnd)
	if sc.Fault == FaultBlackholeSnapshot {
		res.Flags = snapshotFlags(res.Flags)
	}
	// Short request timeouts (etcd's robustness traffic uses 200 ms) leave
	// more writes of unknown outcome to settle; long ones let requests
	// ride out the fault.
	cfg.Traffic.Timeout = []time.Duration{250 * time.Millisecond, 2 * time.Second}[rnd.IntN(2)]
	res.Timeout = cfg.Traffic.Timeout
	// One run in three uses the Kubernetes-like profile; a stream of its
	// own keeps the seed's other choices as they were.
	// Of the others, one in four uses the lease-heavy profile (again a
	// stream of its own).
	if !cfg.FixedTraffic {
		timeout := cfg.Traffic.Timeout
		switch {
		case rand.New(rand.NewPCG(sc.Seed, 0x6b38)).IntN(3) == 0:
			cfg.Traffic = kubernetesTraffic
		case rand.New(rand.NewPCG(sc.Seed, 0x1ea5)).IntN(4) == 0:
			cfg.Traffic = leaseTraffic
		}
		cfg.Traffic.Timeout = timeout
	}
	// Half the runs compact as they go (again a stream of its own).
	if !cfg.FixedTraffic && rand.New(rand.NewPCG(sc.Seed, 0xc0c1)).IntN(2) == 0 {
		cfg.Traffic.CompactEvery = time.Second
	}
	res.Flags, cfg = prepareProductFault(sc, res.Flags, cfg)
	res.Profile = cfg.Traffic.Profile
	if cfg.Traffic.CompactEvery > 0 {
		res.Profile += " + compaction"
	}
	bins := binaries(t, sc.Target)

	c, err := startCluster(t, res.Dir, bins, sc.Members, res.Flags, cfg.Env)
	if err != nil {
		res.Err = fmt.Errorf("start: %w", err)
		return res
	}
	rec := &recorder{start: time.Now()}
	in := &injector{c: c, rec: rec, rnd: rnd, timing: faultTiming{Election: cfg.Election}}
	tr := startTraffic(c, cfg.Traffic, rec, sc.Seed)
	ws := startWatchers(c, cfg.Watch, rec, sc.Seed)
	cp := startCompactor(c, rec, cfg.Traffic.CompactEvery, cfg.Traffic.CompactAtDeletes, sc.Seed)
	in.event("traffic started: %d clients, %d watchers", cfg.Traffic.ClientsPerMember*sc.Members, len(ws.list))
	faultPhase(res, sc, cfg, c, rec, in, cfg.LoadFloor)
	tr.finish()
	read, compactions := cp.finish()
	canoms, checked := cp.anomalies()
	res.add(canoms...)
	res.CompactWatches = checked
	in.event("traffic stopped")

	// Liveness: a last write must succeed.
	final := &trafficClient{id: cfg.Traffic.ClientsPerMember * sc.Members, member: c.members[0].Name,
		cl: c.client(c.members[0]), cfg: cfg.Traffic, rec: rec, last: map[string]string{}, lastRev: map[string]int64{}, leases: &clientLeases{}}
	final.cfg.Timeout = 10 * time.Second
	o := final.do(OpPut, key(0))
	final.cl.Close()
	rec.add(o)
	if o.Err != "" {
		res.add(anomaly{anomNoRecovery, "the final write failed: " + o.Err})
	}
	in.event("final write: %s", o.describe())

	rev, anoms := converge(c, 30*time.Second)
	res.add(anoms...)
	in.event("members converged at revision %d", rev)
	if rev > 0 {
		for _, w := range ws.finish(rev, 30*time.Second) {
			res.add(anomaly{anomWatchStuck, fmt.Sprintf("%s covered revision %d of %d", w, w.covered.Load(), rev)})
		}
		in.event("watchers stopped")
	} else {
		ws.finish(0, 0)
	}
	res.add(checkLogs(c)...)
	ops := rec.history()
	res.Ops = len(ops)
	for _, o := range ops {
		if o.Err == "" {
			switch o.Kind {
			case OpTxn:
				res.Txns++
			case OpLeaseTTL, OpLeaseList:
				res.LeaseAnswers++
			}
		}
		switch {
		case o.Unknown:
			res.Unknown++
		case o.Err != "":
			res.FailedReads++
		default:
			res.OK++
		}
	}
	var lin linearizability
	if rev > 0 {
		res.Revisions = rev
		var dels []*Op
		lin, dels = validate(c, res, ops, ws.list, rev, cfg, read, compactions)
		for _, d := range dels {
			d.ID = len(ops)
			ops = append(ops, d)
		}
		in.event("validated: %d revisions read, %d ops checked in %v", rev, res.Checked, res.CheckerTime)
	}
	res.restores = c.restores
	in.events = append(in.events, cp.events()...)
	slices.SortStableFunc(in.events, func(a, b Event) int { return cmp.Compare(a.At, b.At) })
	res.Compactions = len(compactions)
	res.Events = in.events
	header := fmt.Sprintf("# %s\n# flags: %s\n# %s", sc, strings.Join(res.Flags, " "), strings.ReplaceAll(res.summary(), "\n", "\n# "))
	if err := writeHistory(filepath.Join(res.Dir, "history.txt"), header, ops, in.events); err != nil {
		t.Logf("write history: %v", err)
	}
	if lin.Result == porcupine.Illegal && lin.Detail == "" {
		path := filepath.Join(res.Dir, "linearizability.html")
		if err := porcupine.VisualizePath(ksModel.ToModel(), lin.Info, path); err == nil {
			t.Logf("porcupine's visualization: %s", path)
		}
	}
	return res
}

// validate reads the store's history from the first member and checks the
// recorded operations and the watchers' responses against it and the
// model. It returns the lease-delete ops it added (for the history file).
func validate(c *cluster, res *runResult, ops []*Op, ws []*watchClient, rev int64, cfg runConfig, read []map[string]kvState, compactions []compaction) (linearizability, []*Op) {
	cl := c.client(c.members[0])
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, anoms, err := readHistory(ctx, cl, rev, read)
	if err != nil {
		res.Err = errors.Join(res.Err, fmt.Errorf("read the store's history: %w", err))
		return linearizability{}, nil
	}
	res.add(anoms...)
	res.add(checkRestores(c.restores, h, compactions)...)
	anoms, seenAt, wst := checkWatchers(ws, h, compactions)
	res.add(anoms...)
	res.Watch = wst
	kept, anoms := resolve(ops, h.changes)
	res.add(anoms...)
	for _, o := range ops {
		if !strings.HasPrefix(o.Resolved, "took effect") {
			continue
		}
		res.UnknownApplied++
		// A watcher received the write's event: it took effect before
		// then, which closes its open return time.
		if at, ok := seenAt[o.Rev]; ok {
			if at < o.Call {
				res.add(anomaly{anomPhantomWrite, fmt.Sprintf("%s: a watcher saw revision %d at %.3fs, before the call", o, o.Rev, at.Seconds())})
				continue
			}
			o.Return = at
			o.Resolved += fmt.Sprintf(", seen by a watcher at %.3fs", at.Seconds())
			res.UnknownBounded++
		}
	}
	anoms, dels := checkLeases(ops, h, seenAt)
	res.add(anoms...)
	ends := map[int64]bool{}
	for _, d := range dels {
		ends[d.Lease] = true
	}
	res.LeaseEnds = len(ends)
	kept = append(kept, dels...)
	res.add(checkReadsAtRevision(kept, h)...)
	anoms, res.PastReads = checkPastReads(ops, h, compactions)
	res.add(anoms...)
	res.add(checkRevisionOrder(kept)...)
	lin := checkLinearizable(kept, cfg.CheckTimeout)
	res.Checked, res.CheckerTime = lin.Ops, lin.Duration
	switch lin.Result {
	case porcupine.Illegal:
		if lin.Detail != "" {
			res.add(anomaly{anomNotLinearizable, lin.Detail})
			break
		}
		res.add(anomaly{anomNotLinearizable, "see history.txt and linearizability.html"})
	case porcupine.Unknown:
		res.add(anomaly{anomCheckerTimeout, fmt.Sprintf("no answer in %v", cfg.CheckTimeout)})
	}
	return lin, dels
}
