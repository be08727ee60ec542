package robustness

import (
	"fmt"
	"hash/fnv"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// keyState is the model of one key: the per-key register porcupine checks
// the history against. Revisions are global, so a per-key model knows only
// bounds on them: Rev is the revision of the key's last change (exact when
// Exact, else a strict lower bound, after a delete whose outcome was not
// known took effect).
type keyState struct {
	Exists bool
	Value  string
	Rev    int64
	Exact  bool
}

// keyModel is a per-key model of the etcd-like traffic: the history is
// partitioned by key (every operation touches one key). An op with
// Unknown set may or may not have taken effect (two next states); every
// other op has a known outcome, which must match the state.
var keyModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(*Op).Key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() []any { return []any{keyState{Exact: true}} },
	Step: func(state, input, _ any) []any {
		return step(state.(keyState), input.(*Op))
	},
	Hash: func(state any) uint64 {
		s := state.(keyState)
		h := fnv.New64a()
		fmt.Fprintf(h, "%t/%s/%d/%t", s.Exists, s.Value, s.Rev, s.Exact)
		return h.Sum64()
	},
	DescribeOperation: func(input, _ any) string { return input.(*Op).describe() },
	DescribeState: func(state any) string {
		s := state.(keyState)
		rev := fmt.Sprint(s.Rev)
		if !s.Exact {
			rev = ">" + rev
		}
		if !s.Exists {
			return "absent, last change " + rev
		}
		return fmt.Sprintf("%s (mod %s)", s.Value, rev)
	},
}

// step returns the states the key may be in after op, none if op's outcome
// is impossible in s.
func step(s keyState, op *Op) []any {
	if op.Unknown {
		switch op.Kind {
		case OpPut:
			// Left unknown only by hand-made histories (validation
			// resolves every put by its unique value).
			return []any{s, keyState{Exists: true, Value: op.Value, Rev: s.Rev}}
		case OpDelete:
			if s.Exists {
				return []any{s, keyState{Rev: s.Rev}}
			}
			return []any{s}
		case OpCAS:
			if h, sure := casHolds(s, op); h || !sure {
				return []any{s, keyState{Exists: true, Value: op.Value, Rev: s.Rev}}
			}
			return []any{s}
		}
		return nil
	}
	switch op.Kind {
	case OpGet:
		if readMatches(s, op) {
			return []any{s}
		}
	case OpPut:
		if op.Rev > s.Rev {
			return []any{keyState{Exists: true, Value: op.Value, Rev: op.Rev, Exact: true}}
		}
	case OpLeaseDelete:
		// A lease's end deleted the key at op.Rev (the store says so);
		// its time is known only within bounds.
		if s.Exists && op.Rev > s.Rev {
			return []any{keyState{Rev: op.Rev, Exact: true}}
		}
	case OpDelete:
		if op.Deleted == 0 && !s.Exists && op.Rev >= s.Rev {
			return []any{s}
		}
		if op.Deleted == 1 && s.Exists && op.Rev > s.Rev {
			return []any{keyState{Rev: op.Rev, Exact: true}}
		}
	case OpCAS:
		holds, sure := casHolds(s, op)
		if op.Succeeded && (holds || !sure) && op.Rev > s.Rev {
			return []any{keyState{Exists: true, Value: op.Value, Rev: op.Rev, Exact: true}}
		}
		if !op.Succeeded && (!holds || !sure) && readMatches(s, op) {
			return []any{s}
		}
	}
	return nil
}

// casHolds says whether op's compare holds in s, and whether s knows: a
// mod revision compare on a key that exists with a mod revision known only
// as a lower bound (after a write of unknown outcome) could go either way.
// A missing key's mod revision is 0.
func casHolds(s keyState, op *Op) (holds, sure bool) {
	if !op.ByRev {
		return s.Exists && s.Value == op.Expect, true
	}
	if !s.Exists {
		return op.ExpectRev == 0, true
	}
	if !s.Exact {
		return false, false
	}
	return s.Rev == op.ExpectRev, true
}

// readMatches says whether a read (a get, or a failed cas's else branch)
// could have been served in state s: same presence and value, the key's
// mod revision, and a header revision not before the key's last change.
func readMatches(s keyState, op *Op) bool {
	if op.Found != s.Exists || op.Rev < s.Rev {
		return false
	}
	if !op.Found {
		return true
	}
	if op.Got != s.Value {
		return false
	}
	return !s.Exact || op.ModRev == s.Rev
}

// linearizability is the outcome of a porcupine check.
type linearizability struct {
	Result   porcupine.CheckResult
	Ops      int           // operations checked
	Duration time.Duration // checker time
	Info     porcupine.LinearizationInfo
}

// checkLinearizable runs porcupine over the ops (failed reads dropped,
// writes of unknown outcome returning never) with a timeout; a timeout
// gives porcupine.Unknown, which the caller counts as a failure.
func checkLinearizable(ops []*Op, timeout time.Duration) linearizability {
	var hist []porcupine.Operation
	for _, o := range ops {
		if o.Failed() || !o.IsKeyOp() {
			continue
		}
		ret := int64(o.Return)
		hist = append(hist, porcupine.Operation{
			ClientId: o.Client,
			Input:    o,
			Call:     int64(o.Call),
			Output:   o,
			Return:   ret,
		})
	}
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(keyModel.ToModel(), hist, timeout)
	return linearizability{Result: res, Ops: len(hist), Duration: time.Since(start), Info: info}
}
