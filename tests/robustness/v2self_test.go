package robustness

import (
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// Self-tests of the v2 checkers: hand-made histories that break one rule
// each must be reported, correct ones accepted.

// v2h builds a history of v2 ops with call/return in ms.
func v2h(ops ...*v2Op) []*v2Op {
	for i, o := range ops {
		o.ID = i
		o.Call, o.Return = ms(int(o.Call)), ms(int(o.Return))
		if o.Unknown {
			o.Return = never
		}
	}
	return ops
}

func TestV2ModelFindsViolations(t *testing.T) {
	const k = "/reg/r0"
	cases := []struct {
		name  string
		ops   []*v2Op
		legal bool
	}{
		{"sequential", v2h(
			&v2Op{Client: 0, Kind: v2Set, Key: k, Value: "a", Index: 1, Call: 0, Return: 1},
			&v2Op{Client: 1, Kind: v2Get, Key: k, Found: true, Got: "a", Index: 1, Call: 2, Return: 3},
			&v2Op{Client: 0, Kind: v2CAS, Key: k, Value: "b", Expect: "a", Index: 2, Call: 4, Return: 5},
			&v2Op{Client: 1, Kind: v2CAS, Key: k, Value: "c", ByIndex: true, ExpIdx: 2, Index: 3, Call: 6, Return: 7},
			&v2Op{Client: 0, Kind: v2CAD, Key: k, Expect: "c", Index: 4, Call: 8, Return: 9},
			&v2Op{Client: 1, Kind: v2Get, Key: k, Call: 10, Return: 11},
			&v2Op{Client: 1, Kind: v2CAS, Key: k, Value: "d", Expect: "c", Err: "100", Code: 100, Call: 12, Return: 13},
		), true},
		{"unknown cad may have happened", v2h(
			&v2Op{Client: 0, Kind: v2Set, Key: k, Value: "a", Index: 1, Call: 0, Return: 1},
			&v2Op{Client: 0, Kind: v2CAD, Key: k, Expect: "a", Unknown: true, Err: "timeout", Call: 2},
			&v2Op{Client: 1, Kind: v2Get, Key: k, Call: 10, Return: 11},
		), true},
		{"stale quorum read", v2h(
			&v2Op{Client: 0, Kind: v2Set, Key: k, Value: "a", Index: 1, Call: 0, Return: 1},
			&v2Op{Client: 0, Kind: v2Set, Key: k, Value: "b", Index: 2, Call: 2, Return: 3},
			&v2Op{Client: 1, Kind: v2Get, Key: k, Found: true, Got: "a", Index: 1, Call: 4, Return: 5},
		), false},
		{"cas succeeded on an overwritten value", v2h(
			&v2Op{Client: 0, Kind: v2Set, Key: k, Value: "a", Index: 1, Call: 0, Return: 1},
			&v2Op{Client: 0, Kind: v2Set, Key: k, Value: "b", Index: 2, Call: 2, Return: 3},
			&v2Op{Client: 1, Kind: v2CAS, Key: k, Value: "c", Expect: "a", Index: 3, Call: 4, Return: 5},
		), false},
		{"cas by index succeeded on a moved key", v2h(
			&v2Op{Client: 0, Kind: v2Set, Key: k, Value: "a", Index: 1, Call: 0, Return: 1},
			&v2Op{Client: 0, Kind: v2Set, Key: k, Value: "b", Index: 2, Call: 2, Return: 3},
			&v2Op{Client: 1, Kind: v2CAS, Key: k, Value: "c", ByIndex: true, ExpIdx: 1, Index: 3, Call: 4, Return: 5},
		), false},
		{"compare failed on a matching value", v2h(
			&v2Op{Client: 0, Kind: v2Set, Key: k, Value: "a", Index: 1, Call: 0, Return: 1},
			&v2Op{Client: 1, Kind: v2CAD, Key: k, Expect: "a", Err: "101", Code: 101, Call: 2, Return: 3},
		), false},
		{"read of a deleted key", v2h(
			&v2Op{Client: 0, Kind: v2Set, Key: k, Value: "a", Index: 1, Call: 0, Return: 1},
			&v2Op{Client: 0, Kind: v2CAD, Key: k, Expect: "a", Index: 2, Call: 2, Return: 3},
			&v2Op{Client: 1, Kind: v2Get, Key: k, Found: true, Got: "a", Index: 1, Call: 4, Return: 5},
		), false},
	}
	for _, tc := range cases {
		lin := checkV2Linearizable(tc.ops, 0)
		if got := lin.Result == porcupine.Ok; got != tc.legal {
			t.Errorf("%s: legal %t, want %t", tc.name, got, tc.legal)
		}
	}
}

// v2hist is the history of a set of a at 1, a cas to b at 2, a set of
// /reg/r1 at 3 and a cad of b at 4.
func v2hist() *v2History {
	return &v2History{Final: 4, Events: map[uint64]v2Event{
		1: {Index: 1, Key: "/reg/r0", Action: "set", Value: "a", At: ms(1)},
		2: {Index: 2, Key: "/reg/r0", Action: "compareAndSwap", Value: "b", Prev: "a", At: ms(3)},
		3: {Index: 3, Key: "/reg/r1", Action: "set", Value: "x", At: ms(5)},
		4: {Index: 4, Key: "/reg/r0", Action: "compareAndDelete", Prev: "b", At: ms(7)},
	}}
}

func v2hops() []*v2Op {
	return v2h(
		&v2Op{Client: 0, Kind: v2Set, Key: "/reg/r0", Value: "a", Index: 1, Call: 0, Return: 1},
		&v2Op{Client: 0, Kind: v2CAS, Key: "/reg/r0", Value: "b", Expect: "a", Index: 2, Call: 2, Return: 3},
		&v2Op{Client: 1, Kind: v2Set, Key: "/reg/r1", Value: "x", Unknown: true, Err: "timeout", Call: 4},
		&v2Op{Client: 0, Kind: v2CAD, Key: "/reg/r0", Expect: "b", Unknown: true, Err: "timeout", Call: 6},
		&v2Op{Client: 2, Kind: v2Get, Key: "/reg/r0", Header: 4, Call: 20, Return: 21},
	)
}

func TestV2ResolveFindsViolations(t *testing.T) {
	kept, anoms := resolveV2(v2hops(), v2hist())
	if len(anoms) != 0 {
		t.Fatalf("correct history: %v", anoms)
	}
	if lin := checkV2Linearizable(kept, 0); lin.Result != porcupine.Ok {
		t.Errorf("correct history not linearizable")
	}
	for _, o := range kept {
		if o.Unknown {
			t.Errorf("%s left unknown", o)
		}
	}
	cases := []struct {
		name string
		edit func(ops []*v2Op, h *v2History)
		want string
	}{
		{"acknowledged write lost", func(ops []*v2Op, h *v2History) {
			h.Events[2] = v2Event{Index: 2, Key: "/reg/r0", Action: "set", Value: "zz"}
		}, anomLostWrite},
		{"write at another index", func(ops []*v2Op, h *v2History) { ops[0].Index = 3 }, anomWrongRevision},
		{"failed compare applied", func(ops []*v2Op, h *v2History) {
			ops[1].Err, ops[1].Code, ops[1].Index = "101", 101, 0
		}, anomFailedCASApplied},
		{"write nobody issued", func(ops []*v2Op, h *v2History) { ops[2].Value = "y" }, anomPhantomWrite},
		{"gap", func(ops []*v2Op, h *v2History) { delete(h.Events, 3) }, anomV2HistoryGap},
		{"value twice", func(ops []*v2Op, h *v2History) {
			h.Events[3] = v2Event{Index: 3, Key: "/reg/r1", Action: "set", Value: "a"}
		}, anomDuplicateWrite},
	}
	for _, tc := range cases {
		ops, h := v2hops(), v2hist()
		tc.edit(ops, h)
		_, anoms := resolveV2(ops, h)
		if !hasKind(anoms, tc.want) {
			t.Errorf("%s: got %v, want %s", tc.name, anoms, tc.want)
		}
	}
}

func hasKind(anoms []anomaly, kind string) bool {
	for _, a := range anoms {
		if a.Kind == kind {
			return true
		}
	}
	return false
}

func TestV2OrderFindsStaleIndex(t *testing.T) {
	ops := v2h(
		&v2Op{Client: 0, Kind: v2Set, Key: "/reg/r0", Value: "a", Index: 5, Header: 5, Call: 0, Return: 1},
		&v2Op{Client: 1, Kind: v2Get, Key: "/reg/r1", Header: 4, Call: 2, Return: 3},
	)
	if anoms := checkV2Order(ops); !hasKind(anoms, anomRevisionOrder) {
		t.Errorf("read below an earlier write's index: %v", anoms)
	}
	ops[1].Header = 5
	if anoms := checkV2Order(ops); len(anoms) != 0 {
		t.Errorf("correct: %v", anoms)
	}
	ops = append(ops, v2h(&v2Op{Client: 2, Kind: v2Set, Key: "/reg/r2", Value: "b", Index: 5, Header: 5, Call: 10, Return: 11})...)
	if anoms := checkV2Order(ops); !hasKind(anoms, anomRevisionOrder) {
		t.Errorf("write at an index already seen: %v", anoms)
	}
}

func TestV2WatchCheckerFindsViolations(t *testing.T) {
	h := v2hist()
	poll := func(from uint64, idx uint64) v2Poll {
		ev := h.Events[idx]
		ev.At += ms(1)
		return v2Poll{From: from, Event: ev}
	}
	good := &v2Watcher{key: "/reg/r0", polls: []v2Poll{poll(1, 1), poll(2, 2), poll(3, 4), poll(2, 2)}}
	if anoms, n := checkV2Watchers([]*v2Watcher{good}, h, v2hops()); len(anoms) != 0 || n != 4 {
		t.Fatalf("correct watcher: %v (%d polls)", anoms, n)
	}
	cases := []struct {
		name string
		p    v2Poll
	}{
		{"skipped the first event", poll(1, 2)},
		{"event before the wait index", poll(3, 2)},
		{"another key", poll(3, 3)},
		{"wrong value", func() v2Poll { p := poll(2, 2); p.Event.Value = "q"; return p }()},
		{"wrong prev", func() v2Poll { p := poll(4, 4); p.Event.Prev = "a"; return p }()},
		{"before the write", func() v2Poll { p := poll(2, 2); p.Event.At = ms(1); return p }()},
	}
	for _, tc := range cases {
		w := &v2Watcher{key: "/reg/r0", polls: []v2Poll{tc.p}}
		anoms, _ := checkV2Watchers([]*v2Watcher{w}, h, v2hops())
		if !hasKind(anoms, anomV2Watch) {
			t.Errorf("%s: not reported (%v)", tc.name, anoms)
		} else if !strings.Contains(anoms[0].Detail, "waiting from") {
			t.Errorf("%s: detail %q", tc.name, anoms[0].Detail)
		}
	}
}
