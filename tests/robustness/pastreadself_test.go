package robustness

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// The checks of stale gets and serializable reads (pastread_test.go) can
// fail: planted answers that contradict the store's history at their
// revision, the compactions sent or one member process's own earlier
// answers are each reported with their kind; correct ones pass.

// pr builds a read answer for these tables: kind, member m1 process proc,
// call and return in ms, the key, the header revision and what it read.
type pr struct {
	kind      OpKind
	member    string
	proc      int
	call, ret int
	key       string
	at        int64 // stale get: the revision asked for
	rev       int64 // header revision
	found     bool
	got       string
	mod       int64
	err       string
	listed    []listedKV // serializable list
}

func (p pr) op() *Op {
	o := &Op{Kind: p.kind, Member: p.member, Proc: p.proc, Call: ms(p.call), Return: ms(p.ret), Key: p.key,
		AtRev: p.at, Rev: p.rev, Found: p.found, Got: p.got, ModRev: p.mod, Err: p.err}
	if o.Member == "" {
		o.Member = "m1"
	}
	if o.Proc == 0 {
		o.Proc = 1
	}
	if p.kind == OpSerialList {
		o.Listed, o.Count, o.Limit, o.Pages = p.listed, int64(len(p.listed)), 1, len(p.listed)+1
	}
	return o
}

func TestPastReadChecksFindViolations(t *testing.T) {
	h := selfHistory() // k1=a@2, k2=b@3, k1=c@4, k1 deleted at 5, ... last 8
	compacted := rpctypes.ErrCompacted.Error()
	compactAt4 := []compaction{{Rev: 4, Call: ms(10), Return: ms(20)}}
	putAt7 := pr{kind: OpPut, call: 0, ret: 20, key: "kl2", rev: 7}.op()
	for _, tc := range []struct {
		name        string
		ops         []*Op
		compactions []compaction
		want        string // "": legal
	}{
		{name: "legal: stale get of a past value", ops: []*Op{pr{kind: OpStaleGet, key: "k1", at: 2, rev: 6, found: true, got: "a", mod: 2}.op()}},
		{name: "legal: stale get of a key deleted since", ops: []*Op{pr{kind: OpStaleGet, key: "k1", at: 5, rev: 8}.op()}},
		{name: "legal: stale get below a compaction sent before the answer", compactions: compactAt4,
			ops: []*Op{pr{kind: OpStaleGet, call: 15, ret: 50, key: "k1", at: 3, err: compacted}.op()}},
		{name: "legal: serializable get at its header revision", ops: []*Op{pr{kind: OpSerialGet, key: "k1", rev: 4, found: true, got: "c", mod: 4}.op()}},
		{name: "legal: serializable list at its header revision",
			ops: []*Op{pr{kind: OpSerialList, key: "k", rev: 3, listed: []listedKV{{"k1", "a", 2}, {"k2", "b", 3}}}.op()}},
		{name: "legal: older serializable read after a restart (another process)",
			ops: []*Op{putAt7, pr{kind: OpSerialGet, proc: 2, call: 30, ret: 40, key: "k1", rev: 4, found: true, got: "c", mod: 4}.op()}},
		{name: "legal: older serializable read on another member",
			ops: []*Op{putAt7, pr{kind: OpSerialGet, member: "m2", call: 30, ret: 40, key: "k1", rev: 4, found: true, got: "c", mod: 4}.op()}},
		{name: "legal: older serializable read concurrent with the newer answer",
			ops: []*Op{putAt7, pr{kind: OpSerialGet, call: 10, ret: 40, key: "k1", rev: 4, found: true, got: "c", mod: 4}.op()}},

		{name: "stale get answers a value not in the history at its revision", want: anomStaleGet,
			ops: []*Op{pr{kind: OpStaleGet, key: "k1", at: 2, rev: 6, found: true, got: "c", mod: 4}.op()}},
		{name: "stale get answers the key absent where it existed", want: anomStaleGet,
			ops: []*Op{pr{kind: OpStaleGet, key: "k1", at: 4, rev: 6}.op()}},
		{name: "stale get answered at a header revision below the one asked", want: anomStaleGet,
			ops: []*Op{pr{kind: OpStaleGet, key: "k1", at: 4, rev: 3, found: true, got: "c", mod: 4}.op()}},
		{name: "stale get compacted with no compaction", want: anomStaleGetCompacted,
			ops: []*Op{pr{kind: OpStaleGet, call: 15, ret: 50, key: "k1", at: 3, err: compacted}.op()}},
		{name: "stale get compacted at the compaction's own revision", want: anomStaleGetCompacted, compactions: compactAt4,
			ops: []*Op{pr{kind: OpStaleGet, call: 15, ret: 50, key: "k1", at: 4, err: compacted}.op()}},
		{name: "stale get compacted by a compaction sent after its answer", want: anomStaleGetCompacted,
			compactions: []compaction{{Rev: 4, Call: ms(60), Return: ms(70)}},
			ops:         []*Op{pr{kind: OpStaleGet, call: 15, ret: 50, key: "k1", at: 3, err: compacted}.op()}},
		{name: "stale get answered future revision", want: anomStaleGetFuture,
			ops: []*Op{pr{kind: OpStaleGet, key: "k1", at: 3, err: rpctypes.ErrFutureRev.Error()}.op()}},
		{name: "stale get read below a compaction acknowledged before its call", want: anomStaleGetBelow, compactions: compactAt4,
			ops: []*Op{pr{kind: OpStaleGet, call: 30, ret: 40, key: "k1", at: 2, rev: 6, found: true, got: "a", mod: 2}.op()}},
		{name: "serializable get differs from the history at its header revision", want: anomSerialRead,
			ops: []*Op{pr{kind: OpSerialGet, key: "k1", rev: 4, found: true, got: "a", mod: 2}.op()}},
		{name: "serializable list misses a key at its header revision", want: anomSerialRead,
			ops: []*Op{pr{kind: OpSerialList, key: "k", rev: 3, listed: []listedKV{{"k2", "b", 3}}}.op()}},
		{name: "serializable get above the history's last revision", want: anomSerialAhead,
			ops: []*Op{pr{kind: OpSerialGet, key: "k1", rev: 9}.op()}},
		{name: "serializable get goes back after a write answered by the same process", want: anomSerialBack,
			ops: []*Op{putAt7, pr{kind: OpSerialGet, call: 30, ret: 40, key: "k1", rev: 4, found: true, got: "c", mod: 4}.op()}},
		{name: "serializable get goes back after a serializable get of the same process", want: anomSerialBack,
			ops: []*Op{
				pr{kind: OpSerialGet, call: 0, ret: 10, key: "k2", rev: 6, found: true, got: "b", mod: 3}.op(),
				pr{kind: OpSerialGet, call: 30, ret: 40, key: "k1", rev: 4, found: true, got: "c", mod: 4}.op(),
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			anoms, _ := checkPastReads(tc.ops, h, tc.compactions)
			if tc.want == "" {
				if len(anoms) != 0 {
					t.Fatalf("legal reads reported: %v", anoms)
				}
				return
			}
			if len(anoms) != 1 || anoms[0].Kind != tc.want {
				t.Fatalf("want one %q, got %v", tc.want, anoms)
			}
			t.Log(anoms[0])
		})
	}
}

// A stale get is a linearizable read at its header revision for the
// model and the revision order (its value is checked at the revision it
// asked for); a serializable read is neither, and only bounds the
// revisions of what is sent after it.
func TestPastReadsInModelAndOrder(t *testing.T) {
	putK := func(call, ret int, v string, rev int64) *Op { return put(0, call, ret, "k", v, rev) }
	stale := func(call, ret int, rev int64) *Op {
		return &Op{Client: 1, Kind: OpStaleGet, Key: "k", AtRev: 2, Call: ms(call), Return: ms(ret), Rev: rev, Found: true, Got: "a", ModRev: 2}
	}
	serial := func(call, ret int, rev int64) *Op {
		return &Op{Client: 2, Kind: OpSerialGet, Key: "k", Call: ms(call), Return: ms(ret), Rev: rev, Found: true, Got: "a", ModRev: 2}
	}
	for _, tc := range []struct {
		name         string
		ops          []*Op
		legal, order bool // porcupine's verdict, and no revision-order anomaly
	}{
		{"stale get at the current revision", []*Op{putK(0, 10, "a", 2), putK(20, 30, "b", 3), stale(40, 50, 3)}, true, true},
		{"stale get with a header revision from before a write it followed", []*Op{putK(0, 10, "a", 2), putK(20, 30, "b", 3), stale(40, 50, 2)}, false, false},
		{"stale get with a header revision from a write called after it returned", []*Op{putK(0, 10, "a", 2), stale(20, 30, 3), putK(40, 50, "b", 3)}, false, false},
		{"stale serializable get is no linearizable op", []*Op{putK(0, 10, "a", 2), putK(20, 30, "b", 3), serial(40, 50, 2)}, true, true},
		// The put of b is still in flight: only the serializable read
		// says revision 3 was there before the get.
		{"a linearizable get below a serializable read it followed", []*Op{putK(0, 10, "a", 2), putK(20, 60, "b", 3), serial(35, 38, 3),
			get(1, 40, 50, "k", 2, true, "a", 2)}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lin := checkLinearizable(tc.ops, 10*time.Second)
			if got := lin.Result == porcupine.Ok; got != tc.legal {
				t.Errorf("porcupine: legal = %v, want %v (%s)", got, tc.legal, lin.Detail)
			}
			a := checkRevisionOrder(tc.ops)
			if got := len(a) == 0; got != tc.order {
				t.Errorf("revision order clean = %v, want %v: %v", got, tc.order, a)
			}
		})
	}
}
