// Package harness runs the same workloads against cairn and reference etcd
// servers, alternating between them round by round, and reports medians,
// spreads and per-round ratios. See bench/README.md.
package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes one harness run.
type Config struct {
	RepoRoot  string   // the cairn repository (scripts/, cmd/cairn)
	SUT       string   // "cairn" (build ./cmd/cairn), "etcd-<ver>", or a server binary path
	Refs      []string // reference etcd versions, e.g. 3.6.16 3.7.3
	Mode      string
	Sizes     Sizes
	Workloads []string // workload names or name prefixes; empty: all
	OutDir    string   // results go to OutDir/<timestamp>/
	WorkRoot  string   // parent of the servers' data dirs: the disk measured
	Command   string   // the command line, recorded in the results

	Profile        []string // workloads (names or prefixes) to capture SUT pprof profiles for
	ProfileSeconds int
	ProfileRefs    bool // profile the references too

	// V2Ref is the server binary of the v2 reference (the v2-* workloads);
	// "": Debian's etcd-server package (/usr/bin/etcd, etcd 3.4), installed
	// with apt-get when missing.
	V2Ref string

	Log     io.Writer                  // progress log; nil: discard
	OnStart func(pid int, name string) // called for every process started (tests)
}

// Results is everything a run produced; it is written as results.json.
type Results struct {
	Started    time.Time        `json:"started"`
	Finished   time.Time        `json:"finished"`
	Incomplete string           `json:"incomplete,omitempty"`
	Mode       string           `json:"mode"`
	Command    string           `json:"command"`
	Machine    Machine          `json:"machine"`
	SUT        System           `json:"sut"`
	Refs       []System         `json:"refs"`
	Tool       string           `json:"benchmark_tool"`
	Sizes      Sizes            `json:"sizes"`
	WorkRoot   string           `json:"work_root"`
	Workloads  []WorkloadResult `json:"workloads"`
	Profiles   []string         `json:"profiles,omitempty"`
	Notes      []string         `json:"notes,omitempty"`
	Dir        string           `json:"-"`
}

// WorkloadResult holds the raw runs of one workload and, unless a run
// failed, the statistics over rounds.
type WorkloadResult struct {
	Name     string      `json:"name"`
	Desc     string      `json:"description"`
	Runs     []RunResult `json:"runs"`
	Failed   bool        `json:"failed"`
	Failures []string    `json:"failures,omitempty"`
	// NotSupported maps a system to the reason it does not support the
	// workload (no cluster, no Watch, no v2): not a failure, no values.
	NotSupported map[string]string `json:"not_supported,omitempty"`
	Metrics      []MetricResult    `json:"metrics,omitempty"`
}

// RunResult is one run of one workload against one system.
type RunResult struct {
	System      string             `json:"system"`
	Round       int                `json:"round"`
	OK          bool               `json:"ok"`
	NotSupp     bool               `json:"not_supported,omitempty"` // Error holds the reason; not a failure
	Error       string             `json:"error,omitempty"`
	Expected    int                `json:"expected_requests,omitempty"`
	Measurement *Measurement       `json:"measurement,omitempty"`
	Values      map[string]float64 `json:"values,omitempty"`
	Parts       []PartResult       `json:"parts,omitempty"`
	Seconds     float64            `json:"wall_secs"`
}

// PartResult is a secondary request stream of a run (a fill before the
// measurement, the lists beside the updates, whole scans made of pages).
type PartResult struct {
	Name        string       `json:"name"`
	Expected    int          `json:"expected_requests"`
	Measurement *Measurement `json:"measurement,omitempty"`
	// ErrorsMeasured: failed requests are how this stream measures (the
	// probes for a write after a leader kill): counted and shown, they do
	// not fail the run; unaccounted requests still do.
	ErrorsMeasured bool `json:"errors_measured,omitempty"`
}

// partsProblem describes the first part with failed or unaccounted
// requests, or returns "".
func partsProblem(parts []PartResult) string {
	for _, p := range parts {
		switch {
		case p.Measurement == nil:
			return p.Name + ": no measurement"
		case p.Measurement.Errors > 0 && !p.ErrorsMeasured:
			return fmt.Sprintf("%s: %d of %d requests failed", p.Name, p.Measurement.Errors,
				p.Measurement.Errors+p.Measurement.Succeeded)
		case p.Expected > 0 && p.Measurement.Succeeded+p.Measurement.Errors != p.Expected:
			return fmt.Sprintf("%s: only %d of %d requests accounted for", p.Name,
				p.Measurement.Succeeded+p.Measurement.Errors, p.Expected)
		}
	}
	return ""
}

// MetricResult is one metric of a workload over all rounds.
type MetricResult struct {
	Key          string          `json:"key"`
	Label        string          `json:"label"`
	Unit         string          `json:"unit"`
	HigherBetter bool            `json:"higher_is_better"`
	BySystem     map[string]Stat `json:"by_system"`
	Ratios       map[string]Stat `json:"ratio_sut_over_ref,omitempty"` // per reference, per round
}

// Stat summarises per-round values.
type Stat struct {
	Values []float64 `json:"values"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
}

type runner struct {
	cfg   Config
	procs *procSet
	work  string // scratch dir under WorkRoot: binaries, data dirs, fsync file
	res   *Results
	logMu sync.Mutex
}

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Log == nil {
		return
	}
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.cfg.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// ipSeq numbers the servers of every runner in this process, so that
// runners going on at once (the harness's tests run in parallel) never
// share an address: a port one of them chose and released could otherwise
// be chosen by the other before the first server binds it.
var ipSeq atomic.Uint64

// nextIP spreads servers over 127.0.0.10-249, a fresh address per server.
func (r *runner) nextIP() string {
	return fmt.Sprintf("127.0.0.%d", 10+(ipSeq.Add(1)-1)%240)
}

// Run runs the benchmark described by cfg and writes results.md and
// results.json into a new timestamped directory under cfg.OutDir. Every
// process it starts is gone when it returns, whether it succeeds, fails or
// ctx is cancelled; partial results are written in the last two cases.
func Run(ctx context.Context, cfg Config) (res *Results, err error) {
	if cfg.Sizes.Rounds < 1 {
		return nil, errors.New("rounds must be at least 1")
	}
	if cfg.WorkRoot == "" {
		cfg.WorkRoot = os.TempDir()
	}
	if cfg.ProfileSeconds <= 0 {
		cfg.ProfileSeconds = 10
	}
	sel, err := selectWorkloads(workloads(cfg.Sizes), cfg.Workloads)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, procs: newProcSet(cfg.OnStart)}
	r.work, err = os.MkdirTemp(cfg.WorkRoot, "cairnbench-")
	if err != nil {
		return nil, err
	}
	defer func() {
		// Also on panic: nothing may outlive the harness.
		r.procs.killAll()
		_ = os.RemoveAll(r.work)
	}()

	start := time.Now()
	dir := filepath.Join(cfg.OutDir, start.Format("20060102-150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r.res = &Results{Started: start, Mode: cfg.Mode, Command: cfg.Command, Machine: machineInfo(cfg.WorkRoot),
		Sizes: cfg.Sizes, WorkRoot: cfg.WorkRoot, Tool: "etcd tools/benchmark v" + ToolsVersion, Dir: dir}
	defer func() {
		r.res.Finished = time.Now()
		r.res.Machine.LoadAvgEnd = loadAvg()
		if err != nil {
			r.res.Incomplete = err.Error()
		}
		if werr := r.res.write(); werr != nil && err == nil {
			err = werr
		}
		res = r.res
	}()

	if err := r.ensureRefs(ctx, cfg.Refs); err != nil {
		return nil, err
	}
	sut, err := r.resolveSUT(ctx, cfg.SUT, r.work)
	if err != nil {
		return nil, err
	}
	sut.Version = r.version(ctx, sut.Binary)
	r.res.SUT = sut
	systems := []System{sut}
	for _, v := range cfg.Refs {
		ref := System{Name: "etcd-" + v, Binary: RefBinary(v)}
		ref.Version = r.version(ctx, ref.Binary)
		r.res.Refs = append(r.res.Refs, ref)
		systems = append(systems, ref)
	}
	var v2Systems []System // the v2 workloads: the SUT and the v2 reference only
	if slices.ContainsFunc(sel, func(w workload) bool { return w.v2 }) {
		v2ref, err := r.v2Reference(ctx, cfg.V2Ref)
		if err != nil {
			return nil, err
		}
		r.res.Refs = append(r.res.Refs, v2ref)
		v2Systems = []System{sut, v2ref}
		r.logf("v2 workloads: %s vs %s", sut.Name, v2ref.Name)
	}
	r.logf("results: %s; systems: %s", dir, systemNames(systems))

	for _, w := range sel {
		wr := WorkloadResult{Name: w.name, Desc: w.desc}
		for round := 1; round <= cfg.Sizes.Rounds; round++ {
			sysList := systems
			switch {
			case !w.server:
				sysList = []System{{Name: floorSystem}}
			case w.v2:
				sysList = v2Systems
			}
			for _, sys := range sysList {
				rr := r.runOne(ctx, w, sys, round)
				if ctx.Err() != nil {
					r.res.Workloads = append(r.res.Workloads, wr)
					return nil, ctx.Err()
				}
				wr.Runs = append(wr.Runs, rr)
				r.logf("%-21s round %d %-14s %s", w.name, round, sys.Name, rr.brief())
			}
		}
		wr.finish(w.metrics, sut.Name, r.res.Refs)
		r.res.Workloads = append(r.res.Workloads, wr)
		if matches(w.name, cfg.Profile) && w.server {
			profSystems := []System{sut}
			switch {
			case cfg.ProfileRefs && w.v2:
				profSystems = v2Systems
			case cfg.ProfileRefs:
				profSystems = systems
			}
			for _, sys := range profSystems {
				profile := r.profile
				if w.members > 1 {
					profile = r.profileCluster
				}
				if err := profile(ctx, w, sys); err != nil {
					if ctx.Err() != nil {
						return nil, ctx.Err()
					}
					r.note("profile %s on %s: %v", w.name, sys.Name, err)
				}
			}
		}
	}
	r.res.addFloorRatio(sut.Name)
	if n := r.procs.liveCount(); n != 0 {
		return nil, fmt.Errorf("internal error: %d processes still running after the last workload", n)
	}
	return r.res, nil
}

func (r *runner) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.logf("note: %s", s)
	r.res.Notes = append(r.res.Notes, s)
}

func systemNames(s []System) string {
	var n []string
	for _, x := range s {
		n = append(n, x.Name)
	}
	return strings.Join(n, ", ")
}

// matches reports whether name is selected by pats: a pattern is a workload
// name, a prefix of names, or "all". A pattern that is itself a workload's
// name selects only that one ("memory" is not "memory-revisions").
func matches(name string, pats []string) bool {
	for _, p := range pats {
		if p == name || p == "all" || (p != "" && strings.HasPrefix(name, p) && !isWorkloadName(p)) {
			return true
		}
	}
	return false
}

func isWorkloadName(p string) bool {
	for _, w := range workloads(Modes["tiny"]) {
		if w.name == p {
			return true
		}
	}
	return false
}

func selectWorkloads(all []workload, pats []string) ([]workload, error) {
	if len(pats) == 0 {
		return all, nil
	}
	var out []workload
	floor := false
	for _, w := range all {
		if matches(w.name, pats) {
			out = append(out, w)
			floor = floor || w.name == floorName
		}
	}
	for _, p := range pats {
		if !slices.ContainsFunc(all, func(w workload) bool { return matches(w.name, []string{p}) }) {
			return nil, fmt.Errorf("no workload matches %q", p)
		}
	}
	// Single-client put latency is reported against the floor and against
	// the floor plus the client's round trip: measure both.
	if slices.ContainsFunc(out, func(w workload) bool { return w.name == put1Name }) {
		if !slices.ContainsFunc(out, func(w workload) bool { return w.name == rangeS1Name }) {
			i := slices.IndexFunc(out, func(w workload) bool { return w.name == put1Name })
			j := slices.IndexFunc(all, func(w workload) bool { return w.name == rangeS1Name })
			out = slices.Insert(out, i+1, all[j])
		}
		if !floor {
			out = append([]workload{all[0]}, out...)
		}
	}
	return out, nil
}

// runOne runs workload w once against a fresh server of sys.
func (r *runner) runOne(ctx context.Context, w workload, sys System, round int) (rr RunResult) {
	rr = RunResult{System: sys.Name, Round: round}
	t0 := time.Now()
	defer func() { rr.Seconds = time.Since(t0).Seconds() }()
	var (
		srv *server
		cl  *cluster
		err error
	)
	switch {
	case w.members > 1:
		ips := make([]string, w.members)
		for i := range ips {
			ips[i] = r.nextIP()
		}
		cl, err = startCluster(ctx, r.procs, sys, r.work, ips, w.serverArgs, time.Minute)
		if err != nil {
			return startFailed(rr, err)
		}
		defer cl.stop()
	case w.server:
		srv, err = startServer(ctx, r.procs, sys, r.work, r.nextIP(), w.serverArgs, time.Minute)
		if err != nil {
			return startFailed(rr, err)
		}
		defer srv.stop()
	}
	wctx, cancel := context.WithTimeout(ctx, r.cfg.Sizes.RunTimeout)
	var out runOut
	if cl != nil {
		out, err = w.clusterRun(wctx, r, cl)
	} else {
		out, err = w.run(wctx, r, srv)
	}
	cancel()
	rr.Measurement, rr.Values, rr.Expected, rr.Parts = out.m, out.values, out.expected, out.parts
	dead := ""
	switch {
	case srv != nil && !srv.alive():
		dead = fmt.Sprintf("server exited during the workload (%v)\n%s", srv.waitErr, srv.logTail())
	case cl != nil:
		if ok, why := cl.alive(); !ok {
			dead = why
		}
	}
	reason, notSupp := notSupportedReason(err)
	switch {
	case err != nil && notSupp && dead == "":
		rr.NotSupp, rr.Error = true, reason
		rr.Measurement, rr.Values = nil, nil
	case err != nil:
		rr.Error = err.Error()
	case dead != "":
		rr.Error = dead
	case partsProblem(out.parts) != "":
		rr.Error = partsProblem(out.parts)
	case out.m != nil && out.m.Errors > 0 && !out.errorsMeasured:
		rr.Error = fmt.Sprintf("%d of %d requests failed", out.m.Errors, out.m.Errors+out.m.Succeeded)
	case out.m != nil && out.expected > 0 && out.m.Succeeded+out.m.Errors != out.expected:
		rr.Error = fmt.Sprintf("only %d of %d requests accounted for", out.m.Succeeded+out.m.Errors, out.expected)
	case missingMetric(w.metrics, out.values) != "":
		rr.Error = "no value for " + missingMetric(w.metrics, out.values)
	default:
		rr.OK = true
	}
	return rr
}

// startFailed records a server or cluster that did not start: "not
// supported" for the specific refusals of notSupportedRefusals, a failure
// otherwise.
func startFailed(rr RunResult, err error) RunResult {
	if reason, ok := notSupportedReason(err); ok {
		rr.NotSupp, rr.Error = true, reason
		return rr
	}
	rr.Error = "start: " + err.Error()
	return rr
}

func missingMetric(defs []metricDef, values map[string]float64) string {
	for _, d := range defs {
		if _, ok := values[d.Key]; !ok {
			return d.Key
		}
	}
	return ""
}

func (rr RunResult) brief() string {
	if rr.NotSupp {
		return "not supported: " + rr.Error
	}
	if !rr.OK {
		msg, _, _ := strings.Cut(rr.Error, "\n")
		return "FAILED: " + msg
	}
	var parts []string
	keys := make([]string, 0, len(rr.Values))
	for k := range rr.Values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%s", k, fmtNum(rr.Values[k])))
	}
	return strings.Join(parts, " ")
}

// finish marks the workload failed if any run failed or had failed requests,
// and otherwise computes per-system statistics and per-round ratios.
// A system that does not support the workload (in every round: support
// that comes and goes is a failure) is recorded in NotSupported and has no
// values; that is not a failure.
func (wr *WorkloadResult) finish(defs []metricDef, sut string, refs []System) {
	supported := map[string]bool{}
	for _, rr := range wr.Runs {
		switch {
		case rr.NotSupp:
			if wr.NotSupported == nil {
				wr.NotSupported = map[string]string{}
			}
			wr.NotSupported[rr.System] = rr.Error
		case !rr.OK:
			msg, _, _ := strings.Cut(rr.Error, "\n")
			wr.Failed = true
			wr.Failures = append(wr.Failures, fmt.Sprintf("%s round %d: %s", rr.System, rr.Round, msg))
			supported[rr.System] = true
		default:
			supported[rr.System] = true
		}
	}
	for sys := range wr.NotSupported {
		if supported[sys] {
			wr.Failed = true
			wr.Failures = append(wr.Failures, sys+": not supported in some rounds only")
		}
	}
	if wr.Failed {
		return // not averaged in
	}
	for _, d := range defs {
		if mr := wr.metric(d, sut, refs); len(mr.BySystem) > 0 {
			wr.Metrics = append(wr.Metrics, mr)
		}
	}
}

// notSupportedBy reports whether sys does not support the workload.
func (wr WorkloadResult) notSupportedBy(sys string) bool {
	_, ok := wr.NotSupported[sys]
	return ok
}

// ranOn reports whether sys took part in the workload.
func (wr WorkloadResult) ranOn(sys string) bool {
	return slices.ContainsFunc(wr.Runs, func(rr RunResult) bool { return rr.System == sys })
}

// AnyFailed reports whether some workload failed: the exit status 3 of
// cairnbench. "Not supported" is not a failure.
func (res *Results) AnyFailed() bool {
	return slices.ContainsFunc(res.Workloads, func(w WorkloadResult) bool { return w.Failed })
}

func (wr *WorkloadResult) metric(d metricDef, sut string, refs []System) MetricResult {
	mr := MetricResult{Key: d.Key, Label: d.Label, Unit: d.Unit, HigherBetter: d.HigherBetter,
		BySystem: map[string]Stat{}}
	byRound := map[string]map[int]float64{}
	for _, rr := range wr.Runs {
		if !rr.OK {
			continue
		}
		if byRound[rr.System] == nil {
			byRound[rr.System] = map[int]float64{}
		}
		byRound[rr.System][rr.Round] = rr.Values[d.Key]
	}
	for sys, m := range byRound {
		var vals []float64
		for round := 1; round <= len(m); round++ {
			vals = append(vals, m[round])
		}
		mr.BySystem[sys] = newStat(vals)
	}
	if s, ok := byRound[sut]; ok {
		mr.Ratios = map[string]Stat{}
		for _, ref := range refs {
			if _, ok := byRound[ref.Name]; !ok {
				continue // not run on this reference, or not supported by it
			}
			var ratios []float64
			for round := 1; round <= len(s); round++ {
				if b, ok := byRound[ref.Name][round]; ok && b != 0 {
					ratios = append(ratios, s[round]/b)
				}
			}
			mr.Ratios[ref.Name] = newStat(ratios)
		}
	}
	return mr
}

func newStat(v []float64) Stat {
	st := Stat{Values: v}
	if len(v) == 0 {
		return st // JSON has no NaN; an empty Values means "no data"
	}
	s := slices.Clone(v)
	slices.Sort(s)
	st.Min, st.Max = s[0], s[len(s)-1]
	if n := len(s); n%2 == 1 {
		st.Median = s[n/2]
	} else {
		st.Median = (s[n/2-1] + s[n/2]) / 2
	}
	return st
}

// addFloorRatio adds to put-1c the mean put latency divided by the mean
// fsync latency measured in the same round: how far each server is from the
// physical limit of a durable single-client write. When range-s-1c ran too,
// it also adds the mean put latency divided by the sum of the same
// system's mean serializable 1-key read latency (the client's round trip
// through the server, no disk) and the fsync floor, both of the same round:
// what a put costs beyond one round trip and one fdatasync.
func (res *Results) addFloorRatio(sut string) {
	var floor, put, rng *WorkloadResult
	for i := range res.Workloads {
		switch res.Workloads[i].Name {
		case floorName:
			floor = &res.Workloads[i]
		case put1Name:
			put = &res.Workloads[i]
		case rangeS1Name:
			rng = &res.Workloads[i]
		}
	}
	if floor == nil || put == nil || floor.Failed || put.Failed {
		return
	}
	fl := map[int]float64{}
	for _, rr := range floor.Runs {
		fl[rr.Round] = rr.Values["avg_ms"]
	}
	type sysRound struct {
		sys   string
		round int
	}
	rtt := map[sysRound]float64{}
	if rng != nil && !rng.Failed {
		for _, rr := range rng.Runs {
			if rr.OK {
				rtt[sysRound{rr.System, rr.Round}] = rr.Values["avg_ms"]
			}
		}
	}
	for i := range put.Runs {
		rr := &put.Runs[i]
		f := fl[rr.Round]
		if f > 0 {
			rr.Values["floor_x"] = rr.Values["avg_ms"] / f
		}
		if r := rtt[sysRound{rr.System, rr.Round}]; f > 0 && r > 0 {
			rr.Values["rtt_floor_x"] = rr.Values["avg_ms"] / (r + f)
		}
	}
	put.Metrics = append(put.Metrics, put.metric(
		metricDef{"floor_x", "mean latency ÷ fsync floor", "×", false}, sut, res.Refs))
	if len(rtt) > 0 {
		put.Metrics = append(put.Metrics, put.metric(
			metricDef{"rtt_floor_x", "mean latency ÷ (range-s-1c mean + fsync floor)", "×", false}, sut, res.Refs))
	}
}

func (res *Results) write() error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(res.Dir, "results.json"), b, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(res.Dir, "results.md"), []byte(res.Markdown()), 0o644)
}

// Machine describes where the run happened.
type Machine struct {
	CPUs         int    `json:"cpus"`
	CPUModel     string `json:"cpu_model"`
	MemTotal     string `json:"mem_total"`
	Kernel       string `json:"kernel"`
	GoVersion    string `json:"go_version"`
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end"`
	DataFS       string `json:"data_fs"`
}

func machineInfo(workRoot string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadAvgStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		l, _, _ := strings.Cut(string(b), "\n")
		m.MemTotal = strings.Join(strings.Fields(strings.TrimPrefix(l, "MemTotal:")), " ")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.DataFS = mountOf(workRoot)
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// mountOf names the device and filesystem type holding path (longest
// matching mount point in /proc/mounts).
func mountOf(path string) string {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return ""
	}
	abs, _ := filepath.Abs(path)
	best, out := -1, ""
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > best {
			best, out = len(mp), f[0]+" ("+f[2]+") on "+mp
		}
	}
	return out
}
