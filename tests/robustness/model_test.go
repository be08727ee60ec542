package robustness

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// ksState is the whole-keyspace model: every key's value and mod revision,
// and the store's revision. A state is never changed once built (steps
// copy it). Every response carries a revision and every change bumps it by
// exactly one, so a read fits only the state at its revision and a write
// only the state just before its own: the search is nearly deterministic,
// which keeps porcupine fast over one partition holding the whole history.
type ksState struct {
	Rev int64
	KV  map[string]ksKV
}

type ksKV struct {
	Value string
	Mod   int64
}

func (s *ksState) with(rev int64, puts map[string]string, dels []string) *ksState {
	n := &ksState{Rev: rev, KV: make(map[string]ksKV, len(s.KV)+len(puts))}
	for k, v := range s.KV {
		n.KV[k] = v
	}
	for _, d := range dels {
		delete(n.KV, d)
	}
	for k, v := range puts {
		n.KV[k] = ksKV{v, rev}
	}
	return n
}

func (s *ksState) String() string {
	keys := make([]string, 0, len(s.KV))
	for k := range s.KV {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "rev %d:", s.Rev)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s@%d", k, s.KV[k].Value, s.KV[k].Mod)
	}
	return b.String()
}

// ksModel checks every key operation of a run (gets, puts, deletes,
// compare-and-sets, multi-op txns, lists and the deletions of lease ends)
// against one key-value map with its revision. An op with Unknown set (a
// write the store's history could not settle) may or may not have taken
// effect: two next states.
var ksModel = porcupine.NondeterministicModel{
	Init: func() []any { return []any{&ksState{Rev: 1, KV: map[string]ksKV{}}} },
	Step: func(state, input, _ any) []any {
		return ksStep(state.(*ksState), input.(*Op))
	},
	Equal: func(a, b any) bool {
		x, y := a.(*ksState), b.(*ksState)
		if x == y {
			return true
		}
		if x.Rev != y.Rev || len(x.KV) != len(y.KV) {
			return false
		}
		for k, v := range x.KV {
			if w, ok := y.KV[k]; !ok || w != v {
				return false
			}
		}
		return true
	},
	Hash: func(state any) uint64 {
		s := state.(*ksState)
		var h uint64 = uint64(s.Rev) * 0x9e3779b97f4a7c15
		for k, v := range s.KV { // order-free: xor of per-key hashes
			f := fnv.New64a()
			fmt.Fprintf(f, "%s\x00%s\x00%d", k, v.Value, v.Mod)
			h ^= f.Sum64()
		}
		return h
	},
	DescribeOperation: func(input, _ any) string { return input.(*Op).describe() },
	DescribeState:     func(state any) string { return state.(*ksState).String() },
}

// ksStep returns the states the store may be in after op, none if op's
// answer is impossible in s.
func ksStep(s *ksState, op *Op) []any {
	next := s.Rev + 1
	if op.Unknown {
		// Left unknown: a delete the store's history could not settle,
		// or a hand-made history's write. It may have happened, at the
		// next revision, or not at all.
		out := []any{s}
		switch op.Kind {
		case OpPut:
			out = append(out, s.with(next, map[string]string{op.Key: op.Value}, nil))
		case OpDelete:
			if _, ok := s.KV[op.Key]; ok {
				out = append(out, s.with(next, nil, []string{op.Key}))
			}
		case OpCAS, OpTxn:
			if ksHolds(s, op) {
				out = append(out, s.with(next, txnPuts(op), op.txnDels()))
			}
		}
		return out
	}
	switch op.Kind {
	case OpGet:
		if op.Rev == s.Rev && ksReadMatches(s, op.Key, op.Found, op.Got, op.ModRev) {
			return []any{s}
		}
	case OpList:
		if op.Rev == s.Rev && ksListMatches(s, op) {
			return []any{s}
		}
	case OpStaleGet:
		// A linearizable read at the current revision (its header's)
		// of a past one: the model checks when it was answered, its
		// value is checked at the revision asked for
		// (checkPastReads).
		if op.Rev == s.Rev {
			return []any{s}
		}
	case OpPut:
		if op.Rev == next {
			return []any{s.with(next, map[string]string{op.Key: op.Value}, nil)}
		}
	case OpDelete:
		_, ok := s.KV[op.Key]
		switch {
		case op.Deleted == 0 && !ok && op.Rev == s.Rev:
			return []any{s}
		case op.Deleted == 1 && ok && op.Rev == next:
			return []any{s.with(next, nil, []string{op.Key})}
		}
	case OpLeaseDelete:
		// One op for all the keys a lease's end deleted (grouped by
		// checkLinearizable): they all exist and go in one revision.
		for _, d := range op.Dels {
			if _, ok := s.KV[d]; !ok {
				return nil
			}
		}
		if op.Rev == next {
			return []any{s.with(next, nil, op.Dels)}
		}
	case OpCAS, OpTxn:
		holds := ksHolds(s, op)
		if op.Succeeded != holds {
			return nil
		}
		if !op.Succeeded {
			if op.Rev != s.Rev {
				return nil
			}
			if op.Kind == OpCAS {
				if ksReadMatches(s, op.Key, op.Found, op.Got, op.ModRev) {
					return []any{s}
				}
				return nil
			}
			for i, r := range op.ReadKVs {
				if !ksReadMatches(s, op.Reads[i], r.Found, r.Value, r.ModRev) {
					return nil
				}
			}
			return []any{s}
		}
		if op.Rev != next {
			return nil
		}
		for i, d := range op.Dels {
			_, ok := s.KV[d]
			if i < len(op.DelCounts) && (op.DelCounts[i] == 1) != ok {
				return nil
			}
		}
		return []any{s.with(next, txnPuts(op), op.Dels)}
	}
	return nil
}

// ksHolds says whether all of op's compares hold in s (a cas is a txn of
// one compare).
func ksHolds(s *ksState, op *Op) bool {
	cmps := op.Cmps
	if op.Kind == OpCAS {
		cmps = []txnCmp{{Key: op.Key, ByRev: op.ByRev, ModRev: op.ExpectRev, Value: op.Expect}}
	}
	for _, c := range cmps {
		kv, ok := s.KV[c.Key]
		switch {
		case c.ByRev && !ok:
			if c.ModRev != 0 {
				return false
			}
		case c.ByRev:
			if kv.Mod != c.ModRev {
				return false
			}
		case !ok || kv.Value != c.Value:
			return false
		}
	}
	return true
}

// txnPuts is what a successful cas or txn writes.
func txnPuts(op *Op) map[string]string {
	if op.Kind == OpCAS {
		return map[string]string{op.Key: op.Value}
	}
	out := make(map[string]string, len(op.Puts))
	for _, p := range op.Puts {
		out[p.Key] = p.Value
	}
	return out
}

func (o *Op) txnDels() []string {
	if o.Kind == OpTxn {
		return o.Dels
	}
	return nil
}

func ksReadMatches(s *ksState, key string, found bool, value string, mod int64) bool {
	kv, ok := s.KV[key]
	if ok != found {
		return false
	}
	return !ok || (kv.Value == value && kv.Mod == mod)
}

// ksListMatches says whether a list's pages together are exactly the keys
// under its prefix in s, in order, and its count their number.
func ksListMatches(s *ksState, op *Op) bool {
	var want []listedKV
	for k, kv := range s.KV {
		if strings.HasPrefix(k, op.Key) {
			want = append(want, listedKV{k, kv.Value, kv.Mod})
		}
	}
	slices.SortFunc(want, func(a, b listedKV) int { return strings.Compare(a.Key, b.Key) })
	return op.Count == int64(len(want)) && slices.Equal(want, op.Listed)
}

// linearizability is the outcome of a porcupine check.
type linearizability struct {
	Result   porcupine.CheckResult
	Ops      int           // operations checked
	Duration time.Duration // checker time
	Info     porcupine.LinearizationInfo
	Detail   string // an illegal history found before porcupine ran (tighten)
}

// ksChecked says whether the whole-keyspace model takes op: key reads and
// writes, lists, txns, lease-end deletions and stale gets (by their header
// revision only); lease requests are checked apart (leasecheck_test.go),
// failed reads carry nothing, and serializable reads, which may be stale,
// are no linearizable ops (pastread_test.go checks them).
func ksChecked(o *Op) bool {
	if o.Failed() {
		return false
	}
	switch o.Kind {
	case OpGet, OpPut, OpDelete, OpCAS, OpTxn, OpList, OpLeaseDelete, OpStaleGet:
		return true
	}
	return false
}

// revOrder is where op must sit in any linearization the exact model
// accepts: a change at revision R at 2R, a read at R (or a delete that
// found nothing) at 2R+1, after R's change and before R+1's. Ops without a
// known revision (an unknown write) have none.
func revOrder(o *Op) (int64, bool) {
	if o.Unknown || o.Rev == 0 {
		return 0, false
	}
	if o.Changes() {
		return 2 * o.Rev, true
	}
	return 2*o.Rev + 1, true
}

// tighten narrows the ops' call times by the revision order, which every
// linearization the model accepts follows: an op placed after another must
// take effect after that one's call, so its effective call is at least the
// latest call of every op ordered before it — and, here, just after it,
// so porcupine, which tries ops in call order, meets them in revision
// order and hardly ever backtracks. This is what keeps one partition of
// thousands of operations fast. Times are doubled, a return put 1 after
// its instant, so "just after" fits between two nanoseconds: calls[o] and
// rets[o] are porcupine's times. If an op ordered before another was
// called after that one returned, the history is not linearizable, and
// tighten says which two.
func tighten(ops []*Op) (calls, rets map[*Op]int64, bad string) {
	type ord struct {
		o   *Op
		key int64
	}
	calls, rets = make(map[*Op]int64, len(ops)), make(map[*Op]int64, len(ops))
	var sorted []ord
	for _, o := range ops {
		calls[o] = 2 * int64(o.Call)
		rets[o] = int64(never)
		if o.Return != never {
			rets[o] = 2*int64(o.Return) + 1
		}
		if k, ok := revOrder(o); ok {
			sorted = append(sorted, ord{o, k})
		}
	}
	slices.SortStableFunc(sorted, func(a, b ord) int { return cmp.Compare(a.key, b.key) })
	var natural time.Duration = -1 // latest real call of the groups before
	var naturalOp *Op
	var prefix int64 = -1 // latest effective call of the groups before
	for i := 0; i < len(sorted); {
		j := i
		for j < len(sorted) && sorted[j].key == sorted[i].key {
			j++
		}
		for _, e := range sorted[i:j] {
			if natural > e.o.Return {
				return nil, nil, fmt.Sprintf("%s must take effect after %s (by their revisions), which was called after it returned", e.o, naturalOp)
			}
			calls[e.o] = min(max(calls[e.o], prefix+1), rets[e.o])
		}
		for _, e := range sorted[i:j] {
			if e.o.Call > natural {
				natural, naturalOp = e.o.Call, e.o
			}
			prefix = max(prefix, calls[e.o])
		}
		i = j
	}
	return calls, rets, ""
}

// replay decides the history outright when every op has a known revision:
// the model accepts ops only in revision order (reads of one revision in
// any order among themselves), and tighten has checked that this order
// agrees with real time, so the history is linearizable exactly when the
// ops, replayed in that order, each fit the model. It returns why not, or
// "" (also when some op has no revision, and porcupine alone decides).
// Porcupine still runs on a history replay accepts; replay spares it the
// exhaustive search an illegal history of thousands of ops would need.
func replay(ops []*Op) string {
	type ord struct {
		o   *Op
		key int64
	}
	sorted := make([]ord, 0, len(ops))
	for _, o := range ops {
		k, ok := revOrder(o)
		if !ok {
			return ""
		}
		sorted = append(sorted, ord{o, k})
	}
	slices.SortStableFunc(sorted, func(a, b ord) int {
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.o.Call, b.o.Call)
	})
	s := ksModel.Init()[0].(*ksState)
	for _, e := range sorted {
		next := ksStep(s, e.o)
		if len(next) != 1 {
			var keys []string
			switch e.o.Kind {
			case OpTxn:
				for _, c := range e.o.Cmps {
					keys = append(keys, c.Key)
				}
				for _, p := range e.o.Puts {
					keys = append(keys, p.Key)
				}
				keys = append(append(keys, e.o.Dels...), e.o.Reads...)
			case OpLeaseDelete:
				keys = e.o.Dels
			default:
				keys = []string{e.o.Key}
			}
			var st []string
			for _, k := range keys {
				if kv, ok := s.KV[k]; ok {
					st = append(st, fmt.Sprintf("%s=%s@%d", k, kv.Value, kv.Mod))
				} else {
					st = append(st, k+" absent")
				}
			}
			if e.o.Kind == OpList {
				st = []string{s.String()}
			}
			return fmt.Sprintf("%s does not fit the store as the history before it leaves it, at revision %d: %s", e.o, s.Rev, strings.Join(st, ", "))
		}
		s = next[0].(*ksState)
	}
	return ""
}

// checkLinearizable runs porcupine with the whole-keyspace model over the
// ops (failed reads dropped, writes of unknown outcome returning never, the
// per-key lease-delete ops of one lease end grouped into one, call times
// tightened by the revision order) with a timeout; a timeout gives
// porcupine.Unknown, which the caller counts as a failure.
func checkLinearizable(ops []*Op, timeout time.Duration) linearizability {
	return checkLinearizableWith(ops, timeout, true)
}

// checkLinearizableWith is checkLinearizable, with replay's decision of an
// illegal history left to porcupine when withReplay is false (the
// self-tests check that porcupine's model rejects what replay rejects).
func checkLinearizableWith(ops []*Op, timeout time.Duration, withReplay bool) linearizability {
	start := time.Now()
	var in []*Op
	ends := map[int64]*Op{}
	for _, o := range ops {
		if !ksChecked(o) {
			continue
		}
		if o.Kind == OpLeaseDelete {
			if e := ends[o.Rev]; e != nil {
				e.Dels = append(e.Dels, o.Key)
				continue
			}
			e := *o
			e.Key, e.Dels = "", []string{o.Key}
			ends[o.Rev] = &e
			o = &e
		}
		in = append(in, o)
	}
	calls, rets, bad := tighten(in)
	if bad == "" && withReplay {
		bad = replay(in)
	}
	if bad != "" {
		return linearizability{Result: porcupine.Illegal, Ops: len(in), Duration: time.Since(start), Detail: bad}
	}
	hist := make([]porcupine.Operation, 0, len(in))
	for _, o := range in {
		hist = append(hist, porcupine.Operation{
			ClientId: max(o.Client, 0),
			Input:    o,
			Call:     calls[o],
			Output:   o,
			Return:   rets[o],
		})
	}
	res, info := porcupine.CheckOperationsVerbose(ksModel.ToModel(), hist, timeout)
	return linearizability{Result: res, Ops: len(hist), Duration: time.Since(start), Info: info}
}
