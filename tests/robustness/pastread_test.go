package robustness

import (
	"cmp"
	"fmt"
	"slices"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// Reads of the past and of possibly stale state, checked against the
// store's history at the revision they read:
//
//   - a stale get (OpStaleGet) is a linearizable get at a revision r the
//     client had seen; it must answer the history at r, or ErrCompacted
//     when a compaction above r had been sent before it returned, never
//     "future revision" (r had been committed before the call), and must
//     not read below a compaction acknowledged before its call (a
//     linearizable read has applied it);
//   - a serializable get or list (OpSerialGet, OpSerialList) answers from
//     its member's applied state at its header revision: what it returned
//     must be the history there, the revision no higher than the
//     history's last, and, within one process of one member, never below
//     the header revision of an answer that member's same process gave
//     before the read was sent (it had applied that much already).
//
// A SIGKILLed member may come back with an older backend than it had
// served from (bbolt's last commit had not run; the WAL replays the rest),
// so answers are compared only within one member process: Op.Proc.

// Anomaly kinds of these reads.
const (
	anomStaleGet          = "stale get: differs from the store at its revision"
	anomStaleGetCompacted = "stale get: compacted, but no compaction covered it"
	anomStaleGetFuture    = "stale get: future revision for a revision already seen"
	anomStaleGetBelow     = "stale get: answered below an acknowledged compaction"
	anomSerialRead        = "serializable read: differs from the store at its revision"
	anomSerialAhead       = "serializable read: revision above the history's last"
	anomSerialBack        = "serializable read: revision went back in one member process"
)

// pastReadKinds are the kinds above in report order.
var pastReadKinds = []string{anomStaleGet, anomStaleGetCompacted, anomStaleGetFuture, anomStaleGetBelow,
	anomSerialRead, anomSerialAhead, anomSerialBack}

// pastReadStats counts what checkPastReads checked.
type pastReadStats struct {
	Stale          int // stale gets answered with a value (or absence)
	StaleCompacted int // stale gets answered ErrCompacted
	Serial         int // serializable gets and lists answered
	SerialOrdered  int // ... of them sent after an answer of the same member process
}

func (s *pastReadStats) add(o pastReadStats) {
	s.Stale += o.Stale
	s.StaleCompacted += o.StaleCompacted
	s.Serial += o.Serial
	s.SerialOrdered += o.SerialOrdered
}

// maxPastReadAnomalies bounds each check's report: one bug tends to break
// many reads.
const maxPastReadAnomalies = 20

// checkPastReads checks every stale get and serializable read of ops
// against the store's history h and the compactions the traffic sent.
// Call it after resolve: writes of unknown outcome settled there carry a
// revision that is not their member's answer, and are left out of the
// per-process order.
func checkPastReads(ops []*Op, h *storeHistory, compactions []compaction) ([]anomaly, pastReadStats) {
	var anoms []anomaly
	var st pastReadStats
	report := func(kind, detail string) {
		n := 0
		for _, a := range anoms {
			if a.Kind == kind {
				n++
			}
		}
		if n < maxPastReadAnomalies {
			anoms = append(anoms, anomaly{kind, detail})
		}
	}
	for _, o := range ops {
		switch o.Kind {
		case OpStaleGet:
			checkStaleGet(o, h, compactions, &st, report)
		case OpSerialGet, OpSerialList:
			if o.Err != "" {
				continue // no answer, nothing to check
			}
			st.Serial++
			if o.Rev > h.Last || o.Rev < 1 {
				report(anomSerialAhead, fmt.Sprintf("%s: the history ends at revision %d", o, h.Last))
				continue
			}
			if o.Kind == OpSerialList {
				if a, bad := checkList(o, h); bad {
					report(anomSerialRead, a.Detail)
				}
				continue
			}
			if want, bad := readDiffers(o, h, o.Rev); bad {
				report(anomSerialRead, fmt.Sprintf("%s: the store has %s at revision %d", o, want, o.Rev))
			}
		}
	}
	checkMemberOrder(ops, &st, report)
	return anoms, st
}

// checkStaleGet checks one stale get (see checkPastReads).
func checkStaleGet(o *Op, h *storeHistory, compactions []compaction, st *pastReadStats, report func(kind, detail string)) {
	switch o.Err {
	case "":
	case rpctypes.ErrCompacted.Error():
		// Legal only if a compaction above the revision asked for had
		// been sent (acknowledged or not) before the answer came.
		st.StaleCompacted++
		for _, c := range compactions {
			if c.Rev > o.AtRev && c.Call < o.Return {
				return
			}
		}
		report(anomStaleGetCompacted, fmt.Sprintf("%s: no compaction above revision %d had been sent (compactions: %s)", o, o.AtRev, describeCompactions(compactions)))
		return
	case rpctypes.ErrFutureRev.Error():
		report(anomStaleGetFuture, fmt.Sprintf("%s: the client had seen revision %d or higher before the call", o, o.AtRev))
		return
	default:
		return // a read error (a timeout, a member down) carries nothing
	}
	st.Stale++
	if o.Rev < o.AtRev {
		report(anomStaleGet, fmt.Sprintf("%s: answered at header revision %d, below the revision asked for", o, o.Rev))
		return
	}
	for _, c := range compactions {
		if c.Err == "" && c.Rev > o.AtRev && c.Return < o.Call {
			report(anomStaleGetBelow, fmt.Sprintf("%s: a compaction at %d was acknowledged at %.3fs, before the call", o, c.Rev, c.Return.Seconds()))
			return
		}
	}
	if want, bad := readDiffers(o, h, o.AtRev); bad {
		report(anomStaleGet, fmt.Sprintf("%s: the store has %s at revision %d", o, want, o.AtRev))
	}
}

// readDiffers compares a single-key read's answer with the history at
// rev; it returns what the history has there and whether they differ.
func readDiffers(o *Op, h *storeHistory, rev int64) (string, bool) {
	kv, ok := h.at(rev, o.Key)
	want := "absent"
	if ok {
		want = fmt.Sprintf("%s (mod %d)", kv.Value, kv.Mod)
	}
	bad := rev > h.Last || ok != o.Found || (ok && (kv.Value != o.Got || kv.Mod != o.ModRev))
	return want, bad
}

func describeCompactions(cs []compaction) string {
	if len(cs) == 0 {
		return "none"
	}
	s := ""
	for i, c := range cs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d sent at %.3fs", c.Rev, c.Call.Seconds())
	}
	return s
}

// localAnswer says whether o's header revision is its member's own
// applied state when it answered: key reads (linearizable or not) read
// the member's state, and a write is answered by the member that proposed
// it once it has applied it. Lease requests are left out (keep-alives and
// TimeToLive are answered by the leader), as are writes of unknown outcome
// settled from the store's history (their revision is not an answer).
func localAnswer(o *Op) bool {
	if o.Err != "" || o.Unknown || o.Resolved != "" || o.Proc == 0 {
		return false
	}
	switch o.Kind {
	case OpGet, OpPut, OpDelete, OpCAS, OpTxn, OpList, OpStaleGet, OpSerialGet, OpSerialList:
		return true
	}
	return false
}

// checkMemberOrder checks, per member process, that a serializable read
// sent after another answer of the same process returned has a header
// revision at least that answer's: a member's applied state only moves
// forward while its process lives (a snapshot it installs is newer, too).
func checkMemberOrder(ops []*Op, st *pastReadStats, report func(kind, detail string)) {
	type proc struct {
		member string
		n      int
	}
	byProc := map[proc][]*Op{}
	for _, o := range ops {
		if localAnswer(o) {
			p := proc{o.Member, o.Proc}
			byProc[p] = append(byProc[p], o)
		}
	}
	for _, list := range byProc {
		done := slices.Clone(list)
		slices.SortFunc(done, func(a, b *Op) int { return cmp.Compare(a.Return, b.Return) })
		slices.SortFunc(list, func(a, b *Op) int { return cmp.Compare(a.Call, b.Call) })
		var maxRev int64
		var maxOp *Op
		i := 0
		for _, o := range list {
			for i < len(done) && done[i].Return < o.Call {
				if done[i].Rev > maxRev {
					maxRev, maxOp = done[i].Rev, done[i]
				}
				i++
			}
			if !o.isSerializable() || maxOp == nil {
				continue
			}
			st.SerialOrdered++
			if o.Rev < maxRev {
				report(anomSerialBack, fmt.Sprintf("%s was sent after %s returned (process %d of %s)", o, maxOp, o.Proc, o.Member))
			}
		}
	}
}
