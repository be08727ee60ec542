package mvcc

import (
	"fmt"
	"reflect"
	"testing"
)

func r(main int64) Revision { return Revision{Main: main} }

// history: put@2 put@4 del@6 put@8 put@10 del@12 put@14 put@14.1 put@16
func newTestKeyIndex(t *testing.T) *keyIndex {
	ki := &keyIndex{}
	ki.put(r(2))
	ki.put(r(4))
	if err := ki.tombstone(r(6)); err != nil {
		t.Fatal(err)
	}
	ki.put(r(8))
	ki.put(r(10))
	if err := ki.tombstone(r(12)); err != nil {
		t.Fatal(err)
	}
	ki.put(r(14))
	ki.put(Revision{14, 1})
	ki.put(r(16))
	return ki
}

func TestKeyIndexGet(t *testing.T) {
	ki := newTestKeyIndex(t)
	tests := []struct {
		at       int64
		mod, cre Revision
		ver      int64
		err      bool
	}{
		{at: 17, mod: r(16), cre: r(14), ver: 3},
		{at: 16, mod: r(16), cre: r(14), ver: 3},
		{at: 15, mod: Revision{14, 1}, cre: r(14), ver: 2},
		{at: 14, mod: Revision{14, 1}, cre: r(14), ver: 2},
		{at: 13, err: true},
		{at: 12, err: true},
		{at: 11, mod: r(10), cre: r(8), ver: 2},
		{at: 8, mod: r(8), cre: r(8), ver: 1},
		{at: 7, err: true},
		{at: 6, err: true},
		{at: 5, mod: r(4), cre: r(2), ver: 2},
		{at: 2, mod: r(2), cre: r(2), ver: 1},
		{at: 1, err: true},
	}
	for _, tt := range tests {
		mod, cre, ver, err := ki.get(tt.at)
		if (err != nil) != tt.err || mod != tt.mod || cre != tt.cre || ver != tt.ver {
			t.Errorf("get(%d) = %v %v %d %v, want %v %v %d err=%v", tt.at, mod, cre, ver, err, tt.mod, tt.cre, tt.ver, tt.err)
		}
	}
	if err := (&keyIndex{generations: []generation{{}}}).tombstone(r(3)); err == nil {
		t.Error("tombstone of an empty key index succeeded")
	}
	ki.tombstone(r(18))
	if err := ki.tombstone(r(19)); err == nil {
		t.Error("tombstone of a deleted key succeeded")
	}
	if got := ki.since(9); !reflect.DeepEqual(got, []Revision{r(10), r(12), {14, 1}, r(16), r(18)}) {
		t.Errorf("since(9) = %v", got)
	}
}

// TestKeyIndexCompact walks compaction through the history: what stays in
// the index, which revisions must stay on disk, and what Keep reports.
func TestKeyIndexCompact(t *testing.T) {
	tests := []struct {
		at    int64
		gens  string // generations after compaction
		avail []Revision
		keep  []Revision
	}{
		{1, "[{c2 v3 [{2 0} {4 0} {6 0}]} {c8 v3 [{8 0} {10 0} {12 0}]} {c14 v3 [{14 0} {14 1} {16 0}]}]", nil, nil},
		{2, "[{c2 v3 [{2 0} {4 0} {6 0}]} {c8 v3 [{8 0} {10 0} {12 0}]} {c14 v3 [{14 0} {14 1} {16 0}]}]", []Revision{r(2)}, []Revision{r(2)}},
		{5, "[{c2 v3 [{4 0} {6 0}]} {c8 v3 [{8 0} {10 0} {12 0}]} {c14 v3 [{14 0} {14 1} {16 0}]}]", []Revision{r(4)}, []Revision{r(4)}},
		// The tombstone at the compaction revision stays, but Keep drops it.
		{6, "[{c2 v3 [{6 0}]} {c8 v3 [{8 0} {10 0} {12 0}]} {c14 v3 [{14 0} {14 1} {16 0}]}]", []Revision{r(6)}, nil},
		{7, "[{c8 v3 [{8 0} {10 0} {12 0}]} {c14 v3 [{14 0} {14 1} {16 0}]}]", nil, nil},
		{11, "[{c8 v3 [{10 0} {12 0}]} {c14 v3 [{14 0} {14 1} {16 0}]}]", []Revision{r(10)}, []Revision{r(10)}},
		{12, "[{c8 v3 [{12 0}]} {c14 v3 [{14 0} {14 1} {16 0}]}]", []Revision{r(12)}, nil},
		{15, "[{c14 v3 [{14 1} {16 0}]}]", []Revision{{14, 1}}, []Revision{{14, 1}}},
		{17, "[{c14 v3 [{16 0}]}]", []Revision{r(16)}, []Revision{r(16)}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.at), func(t *testing.T) {
			ki := newTestKeyIndex(t)
			keep := map[Revision]struct{}{}
			ki.keep(tt.at, keep)
			avail := map[Revision]struct{}{}
			ki.compact(tt.at, avail)
			if got := gensString(ki); got != tt.gens {
				t.Errorf("generations %s, want %s", got, tt.gens)
			}
			if !sameSet(avail, tt.avail) {
				t.Errorf("available %v, want %v", avail, tt.avail)
			}
			if !sameSet(keep, tt.keep) {
				t.Errorf("keep %v, want %v", keep, tt.keep)
			}
		})
	}
	// A deleted key disappears after a compaction past its tombstone.
	ki := &keyIndex{}
	ki.put(r(2))
	ki.tombstone(r(3))
	ki.compact(3, map[Revision]struct{}{})
	if ki.isEmpty() {
		t.Fatal("tombstone at the compaction revision dropped")
	}
	ki.compact(4, map[Revision]struct{}{})
	if !ki.isEmpty() {
		t.Fatalf("deleted key survives a later compaction: %v", ki)
	}
}

func sameSet(m map[Revision]struct{}, want []Revision) bool {
	if len(m) != len(want) {
		return false
	}
	for _, w := range want {
		if _, ok := m[w]; !ok {
			return false
		}
	}
	return true
}

func gensString(ki *keyIndex) string {
	out := "["
	for i, g := range ki.generations {
		if i > 0 {
			out += " "
		}
		out += fmt.Sprintf("{c%d v%d %v}", g.created.Main, g.ver, g.revs)
	}
	return out + "]"
}
