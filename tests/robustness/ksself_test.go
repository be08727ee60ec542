package robustness

import (
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
			lin := checkLinearizable(tc.ops, 10*time.Second)
			if got := lin.Result == porcupine.Ok; got != tc.legal {
				t.Fatalf("legal = %v, want %v (%v)", got, tc.legal, lin.Result)
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
	} {
		ops := []*Op{grant, renew, revoke, tc.q}
		anoms := checkLeaseAnswers(ops, info())
		if got := len(anoms) > 0; got != tc.bad {
			t.Errorf("%s: anomalies %v, want some: %v", name, anoms, tc.bad)
		}
	}
}
