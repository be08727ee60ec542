package robustness

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The checkers must be able to fail: hand-made histories with a known
// violation are fed to them, and each must report it. (The seeded bugs
// inside the product are seeded_test.go's.)

// ms builds a time from milliseconds.
func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

type hop struct {
	client       int
	call, ret    int // ms; ret < 0: never (unknown outcome)
	kind         OpKind
	key, val     string
	expect       string
	rev          int64
	found        bool
	got          string
	mod          int64
	deleted      int64
	succeeded    bool
	unknown, err bool
}

func history(hs ...hop) []*Op {
	var out []*Op
	for i, h := range hs {
		o := &Op{ID: i, Client: h.client, Kind: h.kind, Key: h.key, Value: h.val, Expect: h.expect,
			Call: ms(h.call), Return: ms(h.ret), Rev: h.rev, Found: h.found, Got: h.got, ModRev: h.mod,
			Deleted: h.deleted, Succeeded: h.succeeded, Unknown: h.unknown}
		if h.ret < 0 {
			o.Return = never
		}
		if h.unknown || h.err {
			o.Err = "injected"
		}
		out = append(out, o)
	}
	return out
}

func TestCheckerFindsViolations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ops   []*Op
		legal bool
	}{
		{
			name: "legal: sequential put, get, cas, delete",
			ops: history(
				hop{client: 0, call: 0, ret: 10, kind: OpPut, key: "k", val: "a", rev: 2},
				hop{client: 1, call: 20, ret: 30, kind: OpGet, key: "k", rev: 2, found: true, got: "a", mod: 2},
				hop{client: 1, call: 40, ret: 50, kind: OpCAS, key: "k", expect: "a", val: "b", rev: 3, succeeded: true},
				hop{client: 0, call: 60, ret: 70, kind: OpCAS, key: "k", expect: "a", val: "c", rev: 3, found: true, got: "b", mod: 3},
				hop{client: 0, call: 80, ret: 90, kind: OpDelete, key: "k", rev: 4, deleted: 1},
				hop{client: 1, call: 100, ret: 110, kind: OpGet, key: "k", rev: 4},
			),
			legal: true,
		},
		{
			name: "legal: concurrent read sees either value",
			ops: history(
				hop{client: 0, call: 0, ret: 10, kind: OpPut, key: "k", val: "a", rev: 2},
				hop{client: 0, call: 20, ret: 50, kind: OpPut, key: "k", val: "b", rev: 3},
				hop{client: 1, call: 25, ret: 30, kind: OpGet, key: "k", rev: 2, found: true, got: "a", mod: 2},
			),
			legal: true,
		},
		{
			name: "legal: a write of unknown outcome seen later",
			ops: history(
				hop{client: 0, call: 0, ret: -1, kind: OpPut, key: "k", val: "a", unknown: true},
				hop{client: 1, call: 500, ret: 510, kind: OpGet, key: "k", rev: 2, found: true, got: "a", mod: 2},
			),
			legal: true,
		},
		{
			name: "stale read: the value before an acknowledged overwrite",
			ops: history(
				hop{client: 0, call: 0, ret: 10, kind: OpPut, key: "k", val: "a", rev: 2},
				hop{client: 0, call: 20, ret: 30, kind: OpPut, key: "k", val: "b", rev: 3},
				hop{client: 1, call: 40, ret: 50, kind: OpGet, key: "k", rev: 2, found: true, got: "a", mod: 2},
			),
		},
		{
			name: "lost acknowledged write: a later read does not see it",
			ops: history(
				hop{client: 0, call: 0, ret: 10, kind: OpPut, key: "k", val: "a", rev: 2},
				hop{client: 1, call: 20, ret: 30, kind: OpGet, key: "k", rev: 2},
			),
		},
		{
			name: "lost acknowledged delete",
			ops: history(
				hop{client: 0, call: 0, ret: 10, kind: OpPut, key: "k", val: "a", rev: 2},
				hop{client: 0, call: 20, ret: 30, kind: OpDelete, key: "k", rev: 3, deleted: 1},
				hop{client: 1, call: 40, ret: 50, kind: OpGet, key: "k", rev: 3, found: true, got: "a", mod: 2},
			),
		},
		{
			name: "compare-and-set succeeded on a value that was overwritten",
			ops: history(
				hop{client: 0, call: 0, ret: 10, kind: OpPut, key: "k", val: "a", rev: 2},
				hop{client: 0, call: 20, ret: 30, kind: OpPut, key: "k", val: "b", rev: 3},
				hop{client: 1, call: 40, ret: 50, kind: OpCAS, key: "k", expect: "a", val: "c", rev: 4, succeeded: true},
			),
		},
		{
			name: "read with the right value but a wrong mod revision",
			ops: history(
				hop{client: 0, call: 0, ret: 10, kind: OpPut, key: "k", val: "a", rev: 2},
				hop{client: 1, call: 20, ret: 30, kind: OpGet, key: "k", rev: 5, found: true, got: "a", mod: 4},
			),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lin := checkLinearizable(tc.ops, 10*time.Second)
			want := porcupine.Illegal
			if tc.legal {
				want = porcupine.Ok
			}
			if lin.Result != want {
				t.Fatalf("porcupine says %v, want %v", lin.Result, want)
			}
		})
	}
}

// The store-history checks: an acknowledged write missing from the
// store's revisions, a write nobody issued, a failed compare-and-set that
// took effect, and unknown writes settled by the store.
func TestResolveFindsViolations(t *testing.T) {
	ops := history(
		hop{client: 0, call: 0, ret: 10, kind: OpPut, key: "k", val: "a", rev: 2},
		hop{client: 0, call: 20, ret: 30, kind: OpPut, key: "k", val: "b", rev: 3},
		hop{client: 1, call: 40, ret: -1, kind: OpPut, key: "k", val: "c", unknown: true},
		hop{client: 1, call: 50, ret: -1, kind: OpPut, key: "k", val: "d", unknown: true},
		hop{client: 2, call: 60, ret: 70, kind: OpCAS, key: "k", expect: "x", val: "e", rev: 4, found: true, got: "c", mod: 4},
	)
	changes := []storeChange{
		{Rev: 2, Key: "k", Put: true, Value: "a"},
		// b (acknowledged at 3) is missing; c took effect at 4.
		{Rev: 3, Key: "k", Put: true, Value: "c"},
		{Rev: 4, Key: "k", Put: true, Value: "e"},
		{Rev: 5, Key: "k", Put: true, Value: "zz"},
	}
	kept, anoms := resolve(ops, changes)
	kinds := map[string]int{}
	for _, a := range anoms {
		kinds[a.Kind]++
	}
	for _, k := range []string{anomLostWrite, anomFailedCASApplied, anomPhantomWrite} {
		if kinds[k] != 1 {
			t.Errorf("want one %q, got %v", k, anoms)
		}
	}
	if ops[2].Unknown || ops[2].Rev != 3 || !strings.HasPrefix(ops[2].Resolved, "took effect") {
		t.Errorf("unknown put of c not settled at revision 3: %s", ops[2])
	}
	for _, o := range kept {
		if o.Value == "d" {
			t.Errorf("unknown put of d, absent from the store, was kept: %s", o)
		}
	}
}

// A read on one key that misses a write to another key acknowledged
// before it started: both the whole-keyspace model and the revision order
// check see it (a per-key model could not).
func TestRevisionOrderFindsStaleRead(t *testing.T) {
	ops := history(
		hop{client: 0, call: 0, ret: 10, kind: OpPut, key: "k1", val: "a", rev: 2},
		hop{client: 1, call: 20, ret: 30, kind: OpGet, key: "k2", rev: 1},
	)
	if lin := checkLinearizable(ops, 10*time.Second); lin.Result != porcupine.Illegal {
		t.Fatalf("whole-keyspace model: %v", lin.Result)
	}
	if a := checkRevisionOrder(ops); len(a) != 1 || a[0].Kind != anomRevisionOrder {
		t.Fatalf("revision order: %v", a)
	}
	ok := history(
		hop{client: 0, call: 0, ret: 10, kind: OpPut, key: "k1", val: "a", rev: 5},
		hop{client: 1, call: 5, ret: 30, kind: OpGet, key: "k2", rev: 4},
	)
	if a := checkRevisionOrder(ok); len(a) != 0 {
		t.Fatalf("concurrent ops flagged: %v", a)
	}
}

// An unknown write the store shows applied is checked as a write (open
// ended in time) and explains a later read; one the store does not show is
// dropped, and a read of its value is then a violation.
func TestResolvedWritesAreChecked(t *testing.T) {
	changes := []storeChange{{Rev: 2, Key: "k", Put: true, Value: "a"}}
	ops := history(
		hop{client: 0, call: 0, ret: -1, kind: OpPut, key: "k", val: "a", unknown: true},
		hop{client: 1, call: 100, ret: 110, kind: OpGet, key: "k", rev: 2, found: true, got: "a", mod: 2},
	)
	kept, anoms := resolve(ops, changes)
	if len(anoms) != 0 || len(kept) != 2 {
		t.Fatalf("resolve: kept %v, anomalies %v", kept, anoms)
	}
	if lin := checkLinearizable(kept, 10*time.Second); lin.Result != porcupine.Ok {
		t.Fatalf("applied unknown write then read: %v", lin.Result)
	}
	ops = history(
		hop{client: 0, call: 0, ret: -1, kind: OpPut, key: "k", val: "b", unknown: true},
		hop{client: 1, call: 100, ret: 110, kind: OpGet, key: "k", rev: 2, found: true, got: "b", mod: 2},
	)
	kept, _ = resolve(ops, nil)
	if lin := checkLinearizable(kept, 10*time.Second); lin.Result != porcupine.Illegal {
		t.Fatalf("read of a value the store never had: %v", lin.Result)
	}
}

// The whole pipeline can fail: clients read serializably (from the member's
// own state) while the checkers take the reads for linearizable ones, and a
// follower is cut off from the others. Its clients then read values the
// majority has overwritten, and the run must report it.
func TestHarnessCatchesStaleReads(t *testing.T) {
	if mode := os.Getenv("CAIRN_ROBUSTNESS"); mode == "off" || mode == "long" {
		t.Skipf("CAIRN_ROBUSTNESS=%s", mode)
	}
	if testing.Short() {
		t.Skip("-short")
	}
	cfg := shortConfig
	cfg.Traffic.SerializableGets = true
	cfg.FixedTraffic = true
	res := runScenario(t, scenario{TargetCairn, 3, FaultPartitionMinority, 11}, cfg)
	t.Log(res.summary())
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	caught := false
	for _, a := range res.Anomalies {
		if a.Kind == anomNotLinearizable || a.Kind == anomRevisionOrder {
			caught = true
		}
	}
	if !caught {
		t.Fatal("stale serializable reads from a partitioned follower went unnoticed")
	}
}
