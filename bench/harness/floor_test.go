package harness

import (
	"math"
	"slices"
	"testing"
)

// TestSelectBringsFloorAndRoundTrip: selecting put-1c brings the fsync floor
// (first) and range-s-1c (right after put-1c) along, once each.
func TestSelectBringsFloorAndRoundTrip(t *testing.T) {
	all := workloads(Modes["quick"])
	for _, tc := range []struct {
		pats []string
		want []string
	}{
		{[]string{"put-1c"}, []string{floorName, put1Name, rangeS1Name}},
		{[]string{"range-s-1c", "put-1c"}, []string{floorName, put1Name, rangeS1Name}},
		{[]string{"fsync-floor", "put-1c", "range-s-1c"}, []string{floorName, put1Name, rangeS1Name}},
		{[]string{"put-100c"}, []string{"put-100c"}},
		{[]string{"range-s-1c"}, []string{rangeS1Name}},
	} {
		sel, err := selectWorkloads(all, tc.pats)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, w := range sel {
			got = append(got, w.name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("select %v: got %v, want %v", tc.pats, got, tc.want)
		}
	}
}

// TestFloorRatios: put-1c gets mean latency ÷ floor and mean latency ÷
// (the same system's range-s-1c mean + floor), per round, with the ratio to
// the reference computed from them.
func TestFloorRatios(t *testing.T) {
	run := func(sys string, round int, avg float64) RunResult {
		return RunResult{System: sys, Round: round, OK: true, Values: map[string]float64{"avg_ms": avg}}
	}
	res := &Results{
		Refs: []System{{Name: "etcd"}},
		Workloads: []WorkloadResult{
			{Name: floorName, Runs: []RunResult{run(floorSystem, 1, 0.1), run(floorSystem, 2, 0.2)}},
			{Name: put1Name, Runs: []RunResult{run("cairn", 1, 0.3), run("etcd", 1, 0.4), run("cairn", 2, 0.5), run("etcd", 2, 0.6)}},
			{Name: rangeS1Name, Runs: []RunResult{run("cairn", 1, 0.14), run("etcd", 1, 0.1), run("cairn", 2, 0.2), run("etcd", 2, 0.2)}},
		},
	}
	res.addFloorRatio("cairn")
	put := res.Workloads[1]
	if len(put.Metrics) != 2 || put.Metrics[0].Key != "floor_x" || put.Metrics[1].Key != "rtt_floor_x" {
		t.Fatalf("metrics %+v", put.Metrics)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	want := map[string][]float64{"cairn": {0.3 / 0.24, 0.5 / 0.4}, "etcd": {0.4 / 0.2, 0.6 / 0.4}}
	for sys, w := range want {
		got := put.Metrics[1].BySystem[sys].Values
		if len(got) != 2 || !near(got[0], w[0]) || !near(got[1], w[1]) {
			t.Errorf("%s rtt_floor_x %v, want %v", sys, got, w)
		}
	}
	if got := put.Metrics[0].BySystem["cairn"].Values; len(got) != 2 || !near(got[0], 3) || !near(got[1], 2.5) {
		t.Errorf("cairn floor_x %v", got)
	}
	r := put.Metrics[1].Ratios["etcd"]
	if len(r.Values) != 2 || !near(r.Values[0], (0.3/0.24)/(0.4/0.2)) {
		t.Errorf("ratio to etcd %+v", r)
	}

	// Without range-s-1c, only the floor ratio.
	res.Workloads = res.Workloads[:2]
	res.Workloads[1].Metrics = nil
	res.addFloorRatio("cairn")
	if m := res.Workloads[1].Metrics; len(m) != 1 || m[0].Key != "floor_x" {
		t.Fatalf("without range-s-1c: metrics %+v", m)
	}
}
