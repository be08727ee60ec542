package harness

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The issue's sizes are what full mode runs.
func TestFullModeSizesAreTheIssues(t *testing.T) {
	f := Modes["full"]
	if f.PageKeys != 10000 || f.MemRevKeys != 1000000 || f.MemKeys != 1000000 || f.DefragMiB != 1024 {
		t.Errorf("full mode: paging %d keys, memory %d / %d keys, defrag %d MiB; the issue asks 10,000, 1M, 1M, 1 GiB",
			f.PageKeys, f.MemKeys, f.MemRevKeys, f.DefragMiB)
	}
	if f.SnapMiB != 1024 {
		t.Errorf("full mode: snapshot-catchup backend %d MiB; issue 10 asks 1 GiB", f.SnapMiB)
	}
	for name, sz := range Modes {
		if sz.PageKeys <= pageLimit {
			t.Errorf("%s: %d paging keys make a single page", name, sz.PageKeys)
		}
		if sz.K8sObjects <= pageLimit {
			t.Errorf("%s: a pool of %d objects fits in one list page", name, sz.K8sObjects)
		}
		if sz.RangeUnderPut <= 100 {
			t.Errorf("%s: %d reads under puts are too few for a p99", name, sz.RangeUnderPut)
		}
		if sz.MaintWarmup <= 0 || sz.MaintTail <= 0 || sz.DefragMiB <= 0 || sz.CompactKeys <= 0 || sz.SnapMiB <= 0 {
			t.Errorf("%s: maintenance sizes unset: %+v", name, sz)
		}
	}
}

func TestPctlIsReportDefinitionOrMax(t *testing.T) {
	var lats []float64
	for i := 1; i <= 200; i++ {
		lats = append(lats, float64(i)/1000)
	}
	m := summarize(lats, nil, time.Second)
	for _, p := range []float64{50, 90, 99} {
		if got, want := pctl(lats, p), m.Percentiles[strconv.FormatFloat(p, 'f', -1, 64)]; got != want {
			t.Errorf("p%v = %v, summarize says %v", p, got, want)
		}
	}
	if got := pctl([]float64{1, 2, 3}, 99); got != 3 {
		t.Errorf("p99 of 3 samples = %v, want the max", got)
	}
	if got := pctl(nil, 99); got != 0 {
		t.Errorf("p99 of nothing = %v", got)
	}
}

func TestFixedKeyKeepsOrderAndSize(t *testing.T) {
	a, b := fixedKey(pagePrefix, 9, pageKeyLen), fixedKey(pagePrefix, 10, pageKeyLen)
	if len(a) != pageKeyLen || len(b) != pageKeyLen || !(a < b) || !strings.HasPrefix(a, pagePrefix) {
		t.Errorf("keys %q %q", a, b)
	}
}

func TestMatchesExactNameIsNotAPrefix(t *testing.T) {
	if matches("memory-revisions", []string{"memory"}) {
		t.Error(`"memory" selects memory-revisions`)
	}
	if !matches("memory", []string{"memory"}) || !matches("range-prefix-paging", []string{"range-"}) ||
		!matches("defrag-under-load", []string{"defrag"}) {
		t.Error("name or prefix not matched")
	}
}

func TestPartsFailTheRun(t *testing.T) {
	ok := &Measurement{Succeeded: 10}
	if s := partsProblem([]PartResult{{Name: "fill", Expected: 10, Measurement: ok}}); s != "" {
		t.Errorf("clean part reported: %s", s)
	}
	for _, bad := range []PartResult{
		{Name: "fill", Expected: 10, Measurement: &Measurement{Succeeded: 9, Errors: 1}},
		{Name: "lists", Expected: 11, Measurement: ok},
		{Name: "scans"},
	} {
		if partsProblem([]PartResult{bad}) == "" {
			t.Errorf("part %+v not reported", bad)
		}
	}
	wr := WorkloadResult{Runs: []RunResult{{System: "sut", Measurement: &Measurement{Errors: 1},
		Parts: []PartResult{{Name: "fill", Measurement: &Measurement{Errors: 2}}}}}}
	if n := wr.errorsOf("sut"); n != 3 {
		t.Errorf("failed requests %d, want 3 (parts included)", n)
	}
}

// TestGeneratorsCountFailures drives the paging, k8s, paced-load and
// reads-under-puts generators against one etcd server in situations where
// they must report failures: a scan that sees the wrong number of keys, a
// stale mod_revision, a list whose count is wrong, a maintenance operation
// that fails, reads of a key that is not there.
func TestGeneratorsCountFailures(t *testing.T) {
	var p pids
	cfg := testConfig(t, &p)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := &runner{cfg: cfg, procs: newProcSet(p.add)}
	defer r.procs.killAll()
	if err := r.ensureRefs(ctx, []string{"3.6.16"}); err != nil {
		t.Fatal(err)
	}
	s, err := startServer(ctx, r.procs, System{Name: "etcd-3.6.16", Binary: RefBinary("3.6.16")}, t.TempDir(),
		"127.0.0.9", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()

	// Paging: 600 keys are two pages; a scan expecting 601 fails.
	if _, err := preload(ctx, s.cli, 600, func(i int) string { return fixedKey(pagePrefix, i, pageKeyLen) }, "v"); err != nil {
		t.Fatal(err)
	}
	pl := pagingLoad{endpoint: s.endpoint, clients: 2, conns: 1, scans: 3, keys: 600, reqTimeout: 10 * time.Second}
	res, err := pl.run(ctx)
	if err != nil || res.scans.Succeeded != 3 || res.scans.Errors != 0 || res.pages.Succeeded != 6 || res.pagesIssued != 6 {
		t.Fatalf("paging 600 keys: %v scans %+v pages %+v issued %d", err, res.scans, res.pages, res.pagesIssued)
	}
	pl.keys = 601
	if res, err = pl.run(ctx); err != nil || res.scans.Errors != 3 || res.scans.Succeeded != 0 {
		t.Fatalf("paging with a wrong key count: %v scans %+v", err, res.scans)
	}

	// k8s: fresh revisions succeed; stale ones fail once per object (the
	// Else branch then supplies the current revision); a foreign object
	// under the prefix makes every list's count wrong.
	const objects = 20
	revs, err := preload(ctx, s.cli, objects, func(i int) string { return fixedKey(k8sPrefix, i, k8sKeyLen) }, "o")
	if err != nil {
		t.Fatal(err)
	}
	stale := append([]int64(nil), revs...)
	kl := k8sLoad{endpoint: s.endpoint, clients: 4, conns: 2, total: 40, objects: objects, revs: revs,
		reqTimeout: 10 * time.Second}
	kr, err := kl.run(ctx)
	if err != nil || kr.txn.Succeeded != 40 || kr.txn.Errors != 0 || kr.list.Errors != 0 || kr.list.Succeeded == 0 ||
		kr.listsIssued != kr.list.Succeeded {
		t.Fatalf("k8s: %v txn %+v list %+v issued %d", err, kr.txn, kr.list, kr.listsIssued)
	}
	if _, err := s.cli.Put(ctx, fixedKey(k8sPrefix, 999, k8sKeyLen), "foreign"); err != nil {
		t.Fatal(err)
	}
	kl.revs = stale
	kr, err = kl.run(ctx)
	if err != nil || kr.txn.Errors != objects || kr.txn.Succeeded != 40-objects {
		t.Fatalf("k8s with stale revisions: %v txn %+v", err, kr.txn)
	}
	if kr.list.Succeeded != 0 || kr.list.Errors != kr.listsIssued || kr.listsIssued == 0 {
		t.Fatalf("k8s lists with a wrong count: %+v issued %d", kr.list, kr.listsIssued)
	}

	// Paced load: a failing operation fails the measurement; the puts are
	// all accounted for either way.
	u, err := runUnderLoad(ctx, []string{s.endpoint}, 50*time.Millisecond, 50*time.Millisecond,
		func(context.Context, *pacedRun) (time.Time, error) {
			return time.Time{}, errors.New("boom")
		})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.values(); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("failed operation not reported: %v", err)
	}
	if u.m.Succeeded+u.m.Errors != u.issued || u.issued < 100 {
		t.Errorf("paced puts: %d succeeded, %d failed, %d issued", u.m.Succeeded, u.m.Errors, u.issued)
	}

	// Reads under puts: the preloaded key is read; a key that does not
	// exist fails every read, a value of the wrong size too. The puts
	// beside them are all accounted for and succeed.
	if err := preloadRangeKey(ctx, s); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key string
		valSize   int
		wantFails int
	}{
		{"preloaded key", rangeKey, valSize, 0},
		{"missing key", "no-such-key", valSize, 50},
		{"wrong value size", rangeKey, valSize + 1, 50},
	} {
		rl := rangeLoad{endpoint: s.endpoint, clients: 3, conns: 2, total: 50, key: tc.key, valSize: tc.valSize,
			reqTimeout: 10 * time.Second}
		out, err := readsUnderPuts(ctx, s, rl)
		if err != nil || out.m.Errors != tc.wantFails || out.m.Succeeded != 50-tc.wantFails ||
			(out.values == nil) != (tc.wantFails > 0) {
			t.Errorf("%s: %v reads %+v values %v", tc.name, err, out.m, out.values)
		}
		if len(out.parts) != 1 || partsProblem(out.parts) != "" || out.parts[0].Measurement.Succeeded < rupWarmupPuts {
			t.Errorf("%s: puts %+v (%s)", tc.name, out.parts, partsProblem(out.parts))
		}
	}
	s.stop()
	p.checkGone(t)
}
