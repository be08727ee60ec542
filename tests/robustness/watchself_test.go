package robustness

import (
	"testing"
	"time"
)

// A small store history: k1 created at 2, k2 created at 3, k1 updated at 4,
// k1 deleted at 5, and lease 7's keys kl1 and kl2 (put at 6 and 7) deleted
// together at 8.
func selfHistory() *storeHistory {
	s := func(kvs map[string]kvState) map[string]kvState { return kvs }
	k1a := kvState{"a", 2, 2, 1, 0}
	k2 := kvState{"b", 3, 3, 1, 0}
	k1c := kvState{"c", 2, 4, 2, 0}
	l1 := kvState{"x", 6, 6, 1, 7}
	l2 := kvState{"y", 7, 7, 1, 7}
	h := &storeHistory{Last: 8, states: []map[string]kvState{
		nil,
		s(map[string]kvState{}),
		s(map[string]kvState{"k1": k1a}),
		s(map[string]kvState{"k1": k1a, "k2": k2}),
		s(map[string]kvState{"k1": k1c, "k2": k2}),
		s(map[string]kvState{"k2": k2}),
		s(map[string]kvState{"k2": k2, "kl1": l1}),
		s(map[string]kvState{"k2": k2, "kl1": l1, "kl2": l2}),
		s(map[string]kvState{"k2": k2}),
	}}
	h.byRev = make([][]storeChange, 9)
	add := func(ch storeChange) {
		h.byRev[ch.Rev] = append(h.byRev[ch.Rev], ch)
		h.changes = append(h.changes, ch)
	}
	add(storeChange{Rev: 2, Key: "k1", Put: true, Value: "a", KV: k1a})
	add(storeChange{Rev: 3, Key: "k2", Put: true, Value: "b", KV: k2})
	add(storeChange{Rev: 4, Key: "k1", Put: true, Value: "c", KV: k1c, Prev: &k1a})
	add(storeChange{Rev: 5, Key: "k1", Prev: &k1c})
	add(storeChange{Rev: 6, Key: "kl1", Put: true, Value: "x", KV: l1})
	add(storeChange{Rev: 7, Key: "kl2", Put: true, Value: "y", KV: l2})
	add(storeChange{Rev: 8, Key: "kl1", Prev: &l1})
	add(storeChange{Rev: 8, Key: "kl2", Prev: &l2})
	return h
}

// The events the store's history gives, with prev_kv.
func selfEvents(h *storeHistory) map[int64][]watchEvent {
	out := map[int64][]watchEvent{}
	for _, ch := range h.changes {
		ev := watchEvent{Put: ch.Put, Key: ch.Key, KV: kvState{Mod: ch.Rev}, Prev: ch.Prev}
		if ch.Put {
			ev.KV = ch.KV
		}
		out[ch.Rev] = append(out[ch.Rev], ev)
	}
	return out
}

// watcherOf builds a watcher (prefix "k", prev_kv) whose one session
// started at start and received resps.
func watcherOf(start int64, resps ...watchResp) *watchClient {
	w := &watchClient{prefix: "k", prevKV: true}
	w.sessions = []*watchSession{{Start: start, Resps: resps}}
	return w
}

func evResp(at int, evs ...watchEvent) watchResp {
	return watchResp{At: ms(at), Events: evs}
}

// Each watch rule can fail: hand-made watcher histories, each breaking one
// rule, against a hand-made store history; a correct one passes.
func TestWatchCheckerFindsViolations(t *testing.T) {
	h := selfHistory()
	e := selfEvents(h)
	wrongPrev := e[4][0]
	wrongPrev.Prev = &kvState{"zz", 2, 2, 1, 0}
	wrongCreate := e[4][0]
	wrongCreate.KV.Create = 4
	progress := watchResp{At: ms(5), Rev: 4, Progress: true}
	for _, tc := range []struct {
		name string
		w    *watchClient
		want string // "" = no anomaly
	}{
		{"correct, from revision 2", watcherOf(2, evResp(1, e[2]...), evResp(2, e[3]...), evResp(3, e[4]...), evResp(4, e[5]...),
			evResp(5, e[6]...), evResp(6, e[7]...), evResp(7, e[8]...)), ""},
		{"correct, from revision 4 with a progress notification at 5", watcherOf(4, evResp(1, e[4]...), evResp(2, e[5]...),
			watchResp{At: ms(3), Rev: 5, Progress: true}, evResp(4, e[6]...), evResp(5, e[7]...), evResp(6, e[8]...)), ""},
		{"gap: revision 3 missing", watcherOf(2, evResp(1, e[2]...), evResp(2, e[4]...), evResp(3, e[5]...)), anomWatchGap},
		{"gap: progress at 4 without revision 4", watcherOf(2, evResp(1, e[2]...), evResp(2, e[3]...), progress), anomWatchGap},
		{"duplicate", watcherOf(2, evResp(1, e[2]...), evResp(2, e[2]...)), anomWatchDuplicate},
		{"out of order", watcherOf(2, evResp(1, e[3]...), evResp(2, e[2]...)), anomWatchOrder},
		{"revision split across responses", watcherOf(8, evResp(1, e[8][0]), evResp(2, e[8][1])), anomWatchAtomic},
		{"event at or below a progress notification", watcherOf(2, evResp(1, e[2]...), evResp(2, e[3]...), progress, evResp(6, e[4]...)), anomWatchBookmark},
		{"wrong prev_kv", watcherOf(4, evResp(1, wrongPrev)), anomWatchPrevKV},
		{"wrong IsCreate", watcherOf(4, evResp(1, wrongCreate)), anomWatchEvent},
		{"event before the start revision", watcherOf(3, evResp(1, e[2]...), evResp(2, e[3]...)), anomWatchStart},
		{"event the store never had", watcherOf(2, evResp(1, watchEvent{Put: true, Key: "k1", KV: kvState{"q", 2, 2, 1, 0}})), anomWatchEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			anoms, _, _ := checkWatchers([]*watchClient{tc.w}, h, nil)
			if tc.want == "" {
				if len(anoms) != 0 {
					t.Fatalf("want none, got %v", anoms)
				}
				return
			}
			for _, a := range anoms {
				if a.Kind == tc.want {
					return
				}
			}
			t.Fatalf("want %q, got %v", tc.want, anoms)
		})
	}
}

// The lease rules can fail: an end that leaves a key, a key put with a
// lease after its end, a lease no client revoked ending before its last
// keep-alive's TTL ran out.
func TestLeaseCheckerFindsViolations(t *testing.T) {
	h := selfHistory()
	grant := &Op{Kind: OpLeaseGrant, Lease: 7, TTL: 2, Call: ms(0), Return: ms(10)}
	ka := &Op{Kind: OpKeepAlive, Lease: 7, TTL: 2, Call: ms(1000), Return: ms(1010)}
	// Seen at 2.5 s: the keep-alive at 1 s allows an end at 3 s at the earliest.
	anoms, dels := checkLeases([]*Op{grant, ka}, h, map[int64]time.Duration{8: 2500 * time.Millisecond})
	if len(anoms) != 1 || anoms[0].Kind != anomLeaseEarly {
		t.Fatalf("early expiry: %v", anoms)
	}
	if len(dels) != 2 || dels[0].Rev != 8 || dels[0].Return != 2500*time.Millisecond {
		t.Fatalf("lease-delete ops: %v", dels)
	}
	// Seen at 3.5 s: legal.
	if anoms, _ := checkLeases([]*Op{grant, ka}, h, map[int64]time.Duration{8: 3500 * time.Millisecond}); len(anoms) != 0 {
		t.Fatalf("legal expiry: %v", anoms)
	}
	// A revoke sent before it was seen explains it.
	rv := &Op{Kind: OpLeaseRevoke, Lease: 7, Call: ms(2000), Return: ms(2010), Rev: 8}
	if anoms, _ := checkLeases([]*Op{grant, ka, rv}, h, map[int64]time.Duration{8: 2500 * time.Millisecond}); len(anoms) != 0 {
		t.Fatalf("revoked: %v", anoms)
	}

	// The end leaves kl2 behind.
	split := selfHistory()
	split.states[8]["kl2"] = split.states[7]["kl2"]
	split.byRev[8] = split.byRev[8][:1]
	if anoms, _ := checkLeases(nil, split, nil); len(anoms) != 1 || anoms[0].Kind != anomLeaseSplit {
		t.Fatalf("split end: %v", anoms)
	}
	// A put with lease 7 after its end.
	late := selfHistory()
	l3 := kvState{"z", 9, 9, 1, 7}
	late.Last = 9
	late.states = append(late.states, map[string]kvState{"k2": late.states[8]["k2"], "kl3": l3})
	late.byRev = append(late.byRev, []storeChange{{Rev: 9, Key: "kl3", Put: true, Value: "z", KV: l3}})
	late.changes = append(late.changes, late.byRev[9]...)
	found := false
	anoms, _ = checkLeases([]*Op{rv}, late, nil)
	for _, a := range anoms {
		found = found || a.Kind == anomLeaseLeftKey
	}
	if !found {
		t.Fatalf("key after the end: %v", anoms)
	}
	// An acknowledged revoke (answered at revision 8) that left kl2 with
	// the lease at its revision; a later put without a lease hides it
	// from the final state.
	left := selfHistory()
	left.states[8]["kl2"] = left.states[7]["kl2"]
	left.byRev[8] = left.byRev[8][:1]
	y := kvState{"y", 9, 9, 1, 0}
	left.Last = 9
	left.states = append(left.states, map[string]kvState{"k2": left.states[8]["k2"], "kl2": y})
	left.byRev = append(left.byRev, []storeChange{{Rev: 9, Key: "kl2", Put: true, Value: "y", KV: y}})
	left.changes = append(left.changes, left.byRev[9]...)
	found = false
	anoms, _ = checkLeases([]*Op{rv}, left, nil)
	for _, a := range anoms {
		found = found || a.Kind == anomLeaseLeftKey
	}
	if !found {
		t.Fatalf("key left at the revoke's revision: %v", anoms)
	}
}

// A read is checked against the store at its header revision.
func TestReadsAtRevision(t *testing.T) {
	h := selfHistory()
	ok := &Op{Kind: OpGet, Key: "k1", Rev: 4, Found: true, Got: "c", ModRev: 4}
	stale := &Op{Kind: OpGet, Key: "k1", Rev: 5, Found: true, Got: "c", ModRev: 4}
	if a := checkReadsAtRevision([]*Op{ok}, h); len(a) != 0 {
		t.Fatalf("correct read: %v", a)
	}
	if a := checkReadsAtRevision([]*Op{stale}, h); len(a) != 1 || a[0].Kind != anomReadAtRevision {
		t.Fatalf("read of a deleted key: %v", a)
	}
}

// A cancellation for compaction excuses exactly the compacted revisions,
// and only when it names a compaction the traffic sent, above what the
// session still needed.
func TestWatchCompactionRule(t *testing.T) {
	h := selfHistory()
	e := selfEvents(h)
	cancelAt := func(at int, rev int64) watchResp {
		return watchResp{At: ms(at), Canceled: true, CompactRev: rev}
	}
	sessions := func(ss ...*watchSession) *watchClient {
		return &watchClient{prefix: "k", prevKV: true, sessions: ss}
	}
	rest := []watchResp{evResp(11, e[5]...), evResp(12, e[6]...), evResp(13, e[7]...), evResp(14, e[8]...)}
	sent := []compaction{{Rev: 5, Call: ms(1), Return: ms(2)}}
	for _, tc := range []struct {
		name        string
		w           *watchClient
		compactions []compaction
		want        string
	}{
		{"correct: revisions 3-4 compacted, resumed at 5", sessions(
			&watchSession{Start: 2, Resps: []watchResp{evResp(1, e[2]...), cancelAt(10, 5)}},
			&watchSession{Start: 5, Resps: rest}), sent, ""},
		{"no compaction at that revision", sessions(
			&watchSession{Start: 2, Resps: []watchResp{evResp(1, e[2]...), cancelAt(10, 4)}},
			&watchSession{Start: 4, Resps: append([]watchResp{evResp(10, e[4]...)}, rest...)}), sent, anomWatchCompact},
		{"the compaction was sent after the cancellation", sessions(
			&watchSession{Start: 2, Resps: []watchResp{evResp(1, e[2]...), cancelAt(10, 5)}},
			&watchSession{Start: 5, Resps: rest}), []compaction{{Rev: 5, Call: ms(20)}}, anomWatchCompact},
		{"cancelled although its start was not compacted", sessions(
			&watchSession{Start: 5, Resps: []watchResp{cancelAt(10, 5)}},
			&watchSession{Start: 5, Resps: rest}), sent, anomWatchCompact},
		{"a gap past the compaction", sessions(
			&watchSession{Start: 2, Resps: []watchResp{evResp(1, e[2]...), cancelAt(10, 5)}},
			&watchSession{Start: 6, Resps: rest[1:]}), sent, anomWatchGap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			anoms, _, _ := checkWatchers([]*watchClient{tc.w}, h, tc.compactions)
			if tc.want == "" {
				if len(anoms) != 0 {
					t.Fatalf("want none, got %v", anoms)
				}
				return
			}
			for _, a := range anoms {
				if a.Kind == tc.want {
					return
				}
			}
			t.Fatalf("want %q, got %v", tc.want, anoms)
		})
	}
}

// prev_kv may be missing only when a compaction had removed the revision
// before the event (sent before the response arrived).
func TestWatchPrevKVAfterCompaction(t *testing.T) {
	h := selfHistory()
	e := selfEvents(h)
	noPrev := e[4][0]
	noPrev.Prev = nil
	w := watcherOf(4, evResp(10, noPrev))
	for _, tc := range []struct {
		name        string
		compactions []compaction
		want        bool // an anomaly
	}{
		{"no compaction", nil, true},
		{"compacted at 3, revision 3 still there", []compaction{{Rev: 3, Call: ms(1)}}, true},
		{"compacted at 4 before the response", []compaction{{Rev: 4, Call: ms(1)}}, false},
		{"compacted at 4 after the response", []compaction{{Rev: 4, Call: ms(20)}}, true},
	} {
		anoms, _, _ := checkWatchers([]*watchClient{w}, h, tc.compactions)
		if got := len(anoms) > 0; got != tc.want {
			t.Errorf("%s: anomalies %v, want some: %t", tc.name, anoms, tc.want)
		}
	}
}
