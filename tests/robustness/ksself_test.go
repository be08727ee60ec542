package robustness

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The whole-keyspace model must fail histories that no single sequence of
// store states explains, across keys: stale lists, txns whose writes or
// reads are not atomic, revisions going back.

// txnOp is a txn If(mod(a) = ma) Then(put a=va, put c=vc, delete d)
// Else(get a, get b) with its times and answer.
func txnOp(client, call, ret int, ma int64, va, vc string, rev int64, ok bool, dels []int64, reads ...txnRead) *Op {
	return &Op{Client: client, Kind: OpTxn, Call: ms(call), Return: ms(ret), Rev: rev, Succeeded: ok,
		Cmps:  []txnCmp{{Key: "a", ByRev: true, ModRev: ma}},
		Puts:  []txnPut{{"a", va}, {"c", vc}},
		Dels:  []string{"d"},
		Reads: []string{"a", "b"}, ReadKVs: reads, DelCounts: dels}
}

func get(client, call, ret int, k string, rev int64, found bool, v string, mod int64) *Op {
	return &Op{Client: client, Kind: OpGet, Key: k, Call: ms(call), Return: ms(ret), Rev: rev, Found: found, Got: v, ModRev: mod}
}

func put(client, call, ret int, k, v string, rev int64) *Op {
	return &Op{Client: client, Kind: OpPut, Key: k, Value: v, Call: ms(call), Return: ms(ret), Rev: rev}
}

func listOp(client, call, ret int, prefix string, rev int64, kvs ...listedKV) *Op {
	return &Op{Client: client, Kind: OpList, Key: prefix, Call: ms(call), Return: ms(ret), Rev: rev,
		Count: int64(len(kvs)), Listed: kvs, Limit: 2, Pages: 1}
}

func TestKeyspaceModelFindsViolations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ops   []*Op
		legal bool
	}{
		{
			name: "legal: txn succeeds, a concurrent list and gets see one state each",
			ops: []*Op{
				put(0, 0, 10, "d", "x", 2),
				put(0, 20, 30, "b", "y", 3),
				txnOp(1, 40, 80, 0, "a1", "c1", 4, true, []int64{1}),
				listOp(2, 45, 50, "", 3, listedKV{"b", "y", 3}, listedKV{"d", "x", 2}),
				get(3, 60, 90, "c", 4, true, "c1", 4),
				listOp(2, 100, 110, "", 4, listedKV{"a", "a1", 4}, listedKV{"b", "y", 3}, listedKV{"c", "c1", 4}),
				txnOp(0, 120, 130, 0, "a2", "c2", 4, false, nil, txnRead{true, "a1", 4}, txnRead{true, "y", 3}),
			},
			legal: true,
		},
		{
			name: "legal: a lease's end deletes two keys in one revision",
			ops: []*Op{
				put(0, 0, 10, "l1", "x", 2),
				put(0, 20, 30, "l2", "y", 3),
				{Client: -1, Kind: OpLeaseDelete, Key: "l1", Rev: 4, Call: ms(0), Return: never},
				{Client: -1, Kind: OpLeaseDelete, Key: "l2", Rev: 4, Call: ms(0), Return: never},
				listOp(1, 100, 110, "l", 4),
			},
			legal: true,
		},
		{
			name: "stale list: misses a put acknowledged before it started",
			ops: []*Op{
				put(0, 0, 10, "a", "x", 2),
				put(0, 20, 30, "b", "y", 3),
				listOp(1, 40, 50, "", 2, listedKV{"a", "x", 2}),
			},
		},
		{
			name: "list at the current revision with a key missing",
			ops: []*Op{
				put(0, 0, 10, "a", "x", 2),
				put(0, 20, 30, "b", "y", 3),
				listOp(1, 40, 50, "", 3, listedKV{"b", "y", 3}),
			},
		},
		{
			name: "txn not atomic: a reader sees its put of a but not of c at its revision",
			ops: []*Op{
				txnOp(0, 0, 10, 0, "a1", "c1", 2, true, []int64{0}),
				get(1, 20, 30, "a", 2, true, "a1", 2),
				get(1, 40, 50, "c", 2, false, "", 0),
			},
		},
		{
			name: "txn's else reads not from one state",
			ops: []*Op{
				put(0, 0, 10, "a", "x", 2),
				put(0, 20, 30, "b", "y", 3),
				// Fails at revision 3 (mod(a) is 2, not 5) but reads b as
				// absent, as at revision 2.
				txnOp(1, 40, 50, 5, "a1", "c1", 3, false, nil, txnRead{true, "x", 2}, txnRead{}),
			},
		},
		{
			name: "txn succeeded although its compare failed",
			ops: []*Op{
				put(0, 0, 10, "a", "x", 2),
				txnOp(1, 20, 30, 0, "a1", "c1", 3, true, []int64{0}),
			},
		},
		{
			name: "txn reports a delete of a missing key",
			ops: []*Op{
				txnOp(1, 20, 30, 0, "a1", "c1", 2, true, []int64{1}),
			},
		},
		{
			name: "revision goes back on another key",
			ops: []*Op{
				put(0, 0, 10, "a", "x", 2),
				put(0, 20, 30, "a", "y", 3),
				put(1, 40, 50, "b", "z", 3),
			},
		},
		{
			name: "a read at a revision no write made",
			ops: []*Op{
				put(0, 0, 10, "a", "x", 2),
				get(1, 20, 30, "a", 5, true, "x", 2),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, withReplay := range []bool{true, false} {
				lin := checkLinearizableWith(tc.ops, 10*time.Second, withReplay)
				if got := lin.Result == porcupine.Ok; got != tc.legal {
					t.Fatalf("replay %v: legal = %v, want %v (%v %s)", withReplay, got, tc.legal, lin.Result, lin.Detail)
				}
				t.Logf("replay %v: %v %s", withReplay, lin.Result, lin.Detail)
			}
		})
	}
}

// The store-history checks of txns: an acknowledged txn whose writes are
// split over two revisions, an unknown one settled by its values, a
// revision with a txn's writes and one more change.
func TestResolveTxns(t *testing.T) {
	split := txnOp(0, 0, 10, 0, "a1", "c1", 2, true, []int64{0})
	changes := []storeChange{
		{Rev: 2, Key: "a", Put: true, Value: "a1"},
		{Rev: 3, Key: "c", Put: true, Value: "c1"},
	}
	if _, anoms := resolve([]*Op{split}, changes); len(anoms) == 0 {
		t.Errorf("txn split over revisions 2 and 3: no anomaly")
	}

	unknown := txnOp(0, 0, -1, 0, "a1", "c1", 0, false, nil)
	unknown.Return, unknown.Unknown, unknown.Err = never, true, "injected"
	changes = []storeChange{
		{Rev: 2, Key: "d", Put: true, Value: "x"},
		{Rev: 3, Key: "a", Put: true, Value: "a1", InTxn: true},
		{Rev: 3, Key: "c", Put: true, Value: "c1", InTxn: true},
		{Rev: 3, Key: "d", InTxn: true, Prev: &kvState{Value: "x"}},
	}
	ops := []*Op{put(1, 0, 5, "d", "x", 2), unknown}
	kept, anoms := resolve(ops, changes)
	if len(anoms) != 0 || len(kept) != 2 || unknown.Unknown || unknown.Rev != 3 || !unknown.Succeeded || unknown.DelCounts[0] != 1 {
		t.Fatalf("unknown txn not settled at revision 3: %s, %v", unknown, anoms)
	}
	if lin := checkLinearizable(kept, 10*time.Second); lin.Result != porcupine.Ok {
		t.Fatalf("settled txn: %v", lin.Result)
	}

	extra := txnOp(0, 0, 10, 0, "a1", "c1", 2, true, []int64{0})
	changes = []storeChange{
		{Rev: 2, Key: "a", Put: true, Value: "a1", InTxn: true},
		{Rev: 2, Key: "c", Put: true, Value: "c1", InTxn: true},
		{Rev: 2, Key: "e", InTxn: true, Prev: &kvState{Value: "x"}},
	}
	if _, anoms := resolve([]*Op{extra}, changes); len(anoms) != 1 || anoms[0].Kind != anomRevisionHistory {
		t.Errorf("txn's revision deletes a key it did not name: %v", anoms)
	}
}

// The lease answers: a TimeToLive that finds no lease before its TTL ran
// out (nobody revoked it), one that finds a lease revoked before, and a
// LeaseLeases that misses a lease renewed afterwards or lists a revoked one.
func TestLeaseAnswersFindViolations(t *testing.T) {
	grant := &Op{Kind: OpLeaseGrant, Lease: 7, TTL: 2, Call: ms(0), Return: ms(10)}
	renew := &Op{Kind: OpKeepAlive, Lease: 7, TTL: 2, Call: ms(1000), Return: ms(1010)}
	revoke := &Op{Kind: OpLeaseRevoke, Lease: 7, Call: ms(5000), Return: ms(5010), Rev: 3}
	ttl := func(call int, ttl, granted int64) *Op {
		return &Op{Kind: OpLeaseTTL, Lease: 7, Call: ms(call), Return: ms(call + 10), TTL: ttl, GrantedTTL: granted}
	}
	leases := func(call int, ids ...int64) *Op {
		return &Op{Kind: OpLeaseList, Call: ms(call), Return: ms(call + 10), Leases: ids}
	}
	info := func(ops ...*Op) map[int64]*leaseInfo {
		return map[int64]*leaseInfo{7: {grant: grant, renewed: []*Op{renew}, revokes: []*Op{revoke}}}
	}
	for name, tc := range map[string]struct {
		q   *Op
		bad bool
	}{
		"found, in time":                     {ttl(1500, 1, 2), false},
		"not found after its TTL":            {ttl(3500, -1, 0), false},
		"not found after the revoke":         {ttl(6000, -1, 0), false},
		"not found before its TTL ran out":   {ttl(2500, -1, 0), true},
		"not found, then renewed":            {ttl(500, -1, 0), true},
		"found after an acknowledged revoke": {ttl(6000, 1, 2), true},
		"wrong granted TTL":                  {ttl(1500, 1, 5), true},
		"listed while alive":                 {leases(1500, 7), false},
		"not listed, renewed later":          {leases(500), true},
		"listed after the revoke":            {leases(6000, 7), true},
		"listed before the grant":            {leases(-100, 7), true},
	} {
		ops := []*Op{grant, renew, revoke, tc.q}
		anoms := checkLeaseAnswers(ops, info())
		if got := len(anoms) > 0; got != tc.bad {
			t.Errorf("%s: anomalies %v, want some: %v", name, anoms, tc.bad)
		}
	}
}

// simulateKeyspace makes a linearizable history of n operations on a
// simulated store: each op takes effect at its own instant, 10 ms apart,
// and is in flight from up to 40 ms before to up to 40 ms after it (so
// about eight overlap); one write in fifty is of unknown outcome (settled:
// its revision known, its return never), as resolve leaves them.
func simulateKeyspace(n int, seed uint64) []*Op {
	rnd := rand.New(rand.NewPCG(seed, 1))
	s := &ksState{Rev: 1, KV: map[string]ksKV{}}
	var ops []*Op
	for i := range n {
		at := 100 + 10*i
		o := &Op{ID: i, Client: i % 12, Call: ms(at - rnd.IntN(40)), Return: ms(at + rnd.IntN(40))}
		ki := rnd.IntN(10)
		k := key(ki)
		val := fmt.Sprintf("v%d", i)
		switch rnd.IntN(6) {
		case 0:
			o.Kind, o.Key = OpPut, k
			o.Value = val
		case 1:
			o.Kind, o.Key = OpDelete, k
		case 2:
			o.Kind, o.Key, o.Value, o.ByRev = OpCAS, k, val, true
			o.ExpectRev = s.KV[k].Mod
			if rnd.IntN(3) == 0 {
				o.ExpectRev++
			}
		case 3:
			o.Kind = OpTxn
			o.Cmps = []txnCmp{{Key: k, ByRev: true, ModRev: s.KV[k].Mod + int64(rnd.IntN(2))}}
			o.Puts = []txnPut{{k, val + "a"}, {key((ki + 1 + rnd.IntN(9)) % 10), val + "c"}}
			o.Reads = []string{k}
		case 4:
			o.Kind, o.Key, o.Count = OpList, "k", 0
		default:
			o.Kind, o.Key = OpGet, k
		}
		next := ksStepFirst(s, o)
		if o.IsWrite() && rnd.IntN(50) == 0 {
			o.Unknown, o.Resolved, o.Return = false, "took effect", never
		}
		s = next
		ops = append(ops, o)
	}
	return ops
}

// ksStepFirst fills in o's answer from s and returns the next state.
func ksStepFirst(s *ksState, o *Op) *ksState {
	next := s.Rev + 1
	switch o.Kind {
	case OpGet:
		kv, ok := s.KV[o.Key]
		o.Rev, o.Found, o.Got, o.ModRev = s.Rev, ok, kv.Value, kv.Mod
		return s
	case OpList:
		o.Rev, o.Listed = s.Rev, nil
		for _, k := range slices.Sorted(maps.Keys(s.KV)) {
			o.Listed = append(o.Listed, listedKV{k, s.KV[k].Value, s.KV[k].Mod})
		}
		o.Count = int64(len(o.Listed))
		return s
	case OpPut:
		o.Rev = next
		return s.with(next, map[string]string{o.Key: o.Value}, nil)
	case OpDelete:
		if _, ok := s.KV[o.Key]; !ok {
			o.Rev = s.Rev
			return s
		}
		o.Rev, o.Deleted = next, 1
		return s.with(next, nil, []string{o.Key})
	}
	o.Succeeded = ksHolds(s, o)
	if !o.Succeeded {
		o.Rev = s.Rev
		kv, ok := s.KV[o.Key]
		o.Found, o.Got, o.ModRev = ok, kv.Value, kv.Mod
		for _, r := range o.Reads {
			kv, ok := s.KV[r]
			o.ReadKVs = append(o.ReadKVs, txnRead{ok, kv.Value, kv.Mod})
		}
		return s
	}
	o.Rev = next
	return s.with(next, txnPuts(o), nil)
}

// The whole-keyspace check stays fast on a history larger than a run's
// (runs record about 2,000–9,000 operations), with eight operations in
// flight at a time, and finds a single stale read planted in it.
func TestKeyspaceModelScales(t *testing.T) {
	ops := simulateKeyspace(12000, 1)
	lin := checkLinearizable(ops, time.Minute)
	t.Logf("%d ops checked in %v", lin.Ops, lin.Duration)
	if lin.Result != porcupine.Ok {
		t.Fatalf("simulated history: %v", lin.Result)
	}
	// Plant one stale read: a get answered at a revision 20 changes
	// before (acknowledged well before it was sent).
	for _, o := range ops[len(ops)/2:] {
		if o.Kind == OpGet && o.Rev > 30 {
			o.Rev -= 20
			break
		}
	}
	lin = checkLinearizable(ops, time.Minute)
	t.Logf("with a stale read: %v in %v (%s)", lin.Result, lin.Duration, lin.Detail)
	if lin.Result != porcupine.Illegal {
		t.Fatalf("stale read: %v", lin.Result)
	}

	// Plant a wrong value at the right revision: only porcupine's search
	// can reject it.
	ops = simulateKeyspace(12000, 1)
	for _, o := range ops[len(ops)/2:] {
		if o.Kind == OpGet && o.Found {
			o.Got = "nobody wrote this"
			break
		}
	}
	lin = checkLinearizable(ops, time.Minute)
	t.Logf("with a wrong value: %v in %v", lin.Result, lin.Duration)
	if lin.Result != porcupine.Illegal {
		t.Fatalf("wrong value: %v", lin.Result)
	}
}

// Unknown deletes are settled on the deletes the store shows and no
// acknowledged op explains, earliest call first; the others had no effect.
func TestResolveUnknownDeletes(t *testing.T) {
	del := func(call int) *Op {
		return &Op{Kind: OpDelete, Key: "k", Call: ms(call), Return: never, Unknown: true, Err: "injected"}
	}
	ops := []*Op{put(0, 0, 10, "k", "a", 2), del(20), del(30), get(1, 100, 110, "k", 3, false, "", 0)}
	changes := []storeChange{
		{Rev: 2, Key: "k", Put: true, Value: "a"},
		{Rev: 3, Key: "k", Prev: &kvState{Value: "a"}},
	}
	kept, anoms := resolve(ops, changes)
	if len(anoms) != 0 || len(kept) != 3 || ops[1].Unknown || ops[1].Rev != 3 || !ops[2].Unknown {
		t.Fatalf("kept %v, anomalies %v", kept, anoms)
	}
	if lin := checkLinearizable(kept, 10*time.Second); lin.Result != porcupine.Ok {
		t.Fatalf("settled delete: %v %s", lin.Result, lin.Detail)
	}
	changes = append(changes, storeChange{Rev: 4, Key: "k", Put: true, Value: "b"}, storeChange{Rev: 5, Key: "k", Prev: &kvState{Value: "b"}},
		storeChange{Rev: 6, Key: "k", Put: true, Value: "c"}, storeChange{Rev: 7, Key: "k", Prev: &kvState{Value: "c"}})
	ops = []*Op{put(0, 0, 10, "k", "a", 2), del(20), put(0, 40, 50, "k", "b", 4), del(60), put(0, 70, 80, "k", "c", 6)}
	if _, anoms := resolve(ops, changes); len(anoms) != 1 || anoms[0].Kind != anomPhantomWrite {
		t.Fatalf("three deletes, two unknown deletes: %v", anoms)
	}
}

// A client's delete of a leased key rides in a txn with a put, so the
// store's history does not take it for a lease's end; a revision of
// deletes only is one.
func TestClientDeleteOfLeasedKeyIsNoLeaseEnd(t *testing.T) {
	h := &storeHistory{Last: 4, states: []map[string]kvState{
		nil,
		{},
		{"kl1": {Value: "a", Create: 2, Mod: 2, Version: 1, Lease: 5}, "kl2": {Value: "b", Create: 2, Mod: 2, Version: 1, Lease: 6}},
		{"kl2": {Value: "b", Create: 2, Mod: 2, Version: 1, Lease: 6}, "k1": {Value: "m", Create: 3, Mod: 3, Version: 1}},
		{"k1": {Value: "m", Create: 3, Mod: 3, Version: 1}},
	}, byRev: make([][]storeChange, 5)}
	// Revision 2 puts two keys at once: a txn.
	if anoms := h.derive(); len(anoms) != 0 {
		t.Fatalf("derive: %v", anoms)
	}
	for _, ch := range h.byRev[3] {
		if ch.leaseEnd() {
			t.Errorf("revision 3 (a txn's delete and put): %+v taken for a lease's end", ch)
		}
	}
	if len(h.byRev[4]) != 1 || !h.byRev[4][0].leaseEnd() {
		t.Errorf("revision 4 (lease 6 ended): %+v", h.byRev[4])
	}
}
