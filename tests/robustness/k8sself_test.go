package robustness

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The Kubernetes-like profile's checks can fail: a mod-revision
// compare-and-set that succeeds although the key moved on, or fails
// although it had not, is illegal; a list that misses a key, shows a stale
// value or a wrong count at its revision is reported.
func TestKubernetesChecksFindViolations(t *testing.T) {
	byRev := func(ops []*Op, expect map[int]int64) []*Op {
		for i, r := range expect {
			ops[i].ByRev, ops[i].ExpectRev = true, r
		}
		return ops
	}
	for _, tc := range []struct {
		name  string
		ops   []*Op
		legal bool
	}{
		{
			name: "legal: create (mod 0), update at its revision, stale update fails",
			ops: byRev(history(
				hop{client: 0, call: 0, ret: 10, kind: OpCAS, key: "k", val: "a", rev: 2, succeeded: true},
				hop{client: 0, call: 20, ret: 30, kind: OpCAS, key: "k", val: "b", rev: 3, succeeded: true},
				hop{client: 1, call: 40, ret: 50, kind: OpCAS, key: "k", val: "c", rev: 3, found: true, got: "b", mod: 3},
			), map[int]int64{0: 0, 1: 2, 2: 2}),
			legal: true,
		},
		{
			name: "illegal: update at an old mod revision succeeds",
			ops: byRev(history(
				hop{client: 0, call: 0, ret: 10, kind: OpPut, key: "k", val: "a", rev: 2},
				hop{client: 0, call: 20, ret: 30, kind: OpPut, key: "k", val: "b", rev: 3},
				hop{client: 1, call: 40, ret: 50, kind: OpCAS, key: "k", val: "c", rev: 4, succeeded: true},
			), map[int]int64{2: 2}),
		},
		{
			name: "illegal: update at the current mod revision fails",
			ops: byRev(history(
				hop{client: 0, call: 0, ret: 10, kind: OpPut, key: "k", val: "a", rev: 2},
				hop{client: 1, call: 40, ret: 50, kind: OpCAS, key: "k", val: "c", rev: 2, found: true, got: "a", mod: 2},
			), map[int]int64{1: 2}),
		},
		{
			name: "illegal: create (mod 0) succeeds on an existing key",
			ops: byRev(history(
				hop{client: 0, call: 0, ret: 10, kind: OpPut, key: "k", val: "a", rev: 2},
				hop{client: 1, call: 40, ret: 50, kind: OpCAS, key: "k", val: "c", rev: 3, succeeded: true},
			), map[int]int64{1: 0}),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lin := checkLinearizable(tc.ops, time.Minute)
			if got := lin.Result == porcupine.Ok; got != tc.legal {
				t.Fatalf("legal = %v, want %v (%v)", got, tc.legal, lin.Result)
			}
		})
	}

	h := selfHistory()
	list := func(prefix string, rev, count int64, kvs ...listedKV) *Op {
		return &Op{Kind: OpList, Key: prefix, Rev: rev, Count: count, Listed: kvs, Limit: 1, Pages: len(kvs) + 1}
	}
	good := list("k", 4, 2, listedKV{"k1", "c", 4}, listedKV{"k2", "b", 3})
	if a := checkReadsAtRevision([]*Op{good, list("kl", 4, 0)}, h); len(a) != 0 {
		t.Fatalf("correct lists: %v", a)
	}
	for name, o := range map[string]*Op{
		"a key missing": list("k", 4, 2, listedKV{"k2", "b", 3}),
		"a stale value": list("k", 4, 2, listedKV{"k1", "a", 2}, listedKV{"k2", "b", 3}),
		"a wrong count": list("k", 4, 3, listedKV{"k1", "c", 4}, listedKV{"k2", "b", 3}),
		"a deleted key": list("k", 5, 2, listedKV{"k1", "c", 4}, listedKV{"k2", "b", 3}),
		"out of order":  list("k", 4, 2, listedKV{"k2", "b", 3}, listedKV{"k1", "c", 4}),
	} {
		if a := checkReadsAtRevision([]*Op{o}, h); len(a) != 1 || a[0].Kind != anomReadAtRevision {
			t.Errorf("list with %s: %v", name, a)
		}
	}
}
