package robustness

import (
	"maps"
	"testing"
)

// TestRestoreCheckerFindsViolations: a restored member that matches the
// history at the snapshot's revision passes; one that lacks a write, has a
// later one, has another value, sits at a revision outside the snapshot's
// window or reads from another compaction is reported.
func TestRestoreCheckerFindsViolations(t *testing.T) {
	h := selfHistory()
	good := func() *restoreCheck {
		states := map[int64]map[string]kvState{}
		for r := int64(3); r <= 6; r++ {
			states[r] = maps.Clone(h.states[r])
		}
		return &restoreCheck{Source: "m1", Before: 5, After: 7, Call: ms(10), Return: ms(20), Rev: 6,
			Members: []restoredMember{{Name: "r1", Tool: "cairnctl", Current: 6, Low: 3, States: states}}}
	}
	cps := []compaction{{Rev: 3, Call: ms(1), Return: ms(2)}}
	if anoms := checkRestores([]*restoreCheck{good()}, h, cps); len(anoms) != 0 {
		t.Fatalf("correct restore: %v", anoms)
	}
	cases := []struct {
		name string
		edit func(rc *restoreCheck)
		cps  []compaction
	}{
		{"acknowledged write missing", func(rc *restoreCheck) { delete(rc.Members[0].States[6], "kl1") }, cps},
		{"a later write present", func(rc *restoreCheck) { rc.Members[0].States[6]["kl2"] = kvState{"y", 7, 7, 1, 7} }, cps},
		{"another value", func(rc *restoreCheck) { rc.Members[0].States[4]["k1"] = kvState{"a", 2, 2, 1, 0} }, cps},
		{"revision outside the snapshot's window", func(rc *restoreCheck) { rc.Before = 7 }, cps},
		{"behind the snapshot", func(rc *restoreCheck) { rc.Members[0].Current = 5 }, cps},
		{"compaction lost", func(rc *restoreCheck) {
			rc.Members[0].Low = 1
			rc.Members[0].States[1], rc.Members[0].States[2] = h.states[1], h.states[2]
		}, cps},
		{"compaction not sent", func(rc *restoreCheck) {}, nil},
	}
	for _, tc := range cases {
		rc := good()
		tc.edit(rc)
		if anoms := checkRestores([]*restoreCheck{rc}, h, tc.cps); !hasKind(anoms, anomRestore) {
			t.Errorf("%s: not reported", tc.name)
		}
	}
}
