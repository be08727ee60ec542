package robustness

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Checkers of the v2 register workload.

// Anomaly kinds of the v2 workload (the others are shared with v3).
const (
	anomV2HistoryGap = "v2: history has a gap"
	anomV2Watch      = "v2: watch answered with the wrong event"
)

// v2History is the v2 store's whole history as the history watcher saw
// it: index → event, every index from 1 to Final.
type v2History struct {
	Events map[uint64]v2Event
	Final  uint64
}

// v2State is the model of one register: presence, value and the index of
// its last change (exact, or a strict lower bound after a delete of unknown
// outcome and place).
type v2State struct {
	Exists bool
	Value  string
	Index  uint64
	Exact  bool
}

// v2Model is porcupine's model of the v2 registers, partitioned by key.
// A write of unknown outcome that validation could not place may take
// effect or not; every other op's outcome must match the state.
var v2Model = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(*v2Op).Key
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
	Init: func() []any { return []any{v2State{Exact: true}} },
	Step: func(state, input, _ any) []any { return v2Step(state.(v2State), input.(*v2Op)) },
	Hash: func(state any) uint64 {
		s := state.(v2State)
		h := fnv.New64a()
		fmt.Fprintf(h, "%t/%s/%d/%t", s.Exists, s.Value, s.Index, s.Exact)
		return h.Sum64()
	},
	DescribeOperation: func(input, _ any) string { return input.(*v2Op).describe() },
	DescribeState: func(state any) string {
		s := state.(v2State)
		idx := fmt.Sprint(s.Index)
		if !s.Exact {
			idx = ">" + idx
		}
		if !s.Exists {
			return "absent, last change " + idx
		}
		return fmt.Sprintf("%s@%s", s.Value, idx)
	},
}

// v2Holds says whether o's compare holds in s, and whether s knows.
func v2Holds(s v2State, o *v2Op) (holds, sure bool) {
	if !s.Exists {
		return false, true
	}
	if !o.ByIndex {
		return s.Value == o.Expect, true
	}
	if s.Exact || o.ExpIdx <= s.Index {
		return s.Exact && s.Index == o.ExpIdx, true
	}
	return false, false
}

// v2Step returns the states a register may be in after o.
func v2Step(s v2State, o *v2Op) []any {
	if o.Unknown {
		// Not placed by validation (a compare-and-delete whose event
		// could be another's): no effect, or the delete.
		out := []any{s}
		if holds, sure := v2Holds(s, o); o.Kind == v2CAD && (holds || !sure) {
			out = append(out, v2State{Index: s.Index})
		}
		if o.Kind == v2Set || (o.Kind == v2CAS && s.Exists) { // hand-made histories only
			out = append(out, v2State{Exists: true, Value: o.Value, Index: s.Index})
		}
		return out
	}
	switch o.Kind {
	case v2Get:
		if !o.Found {
			if s.Exists {
				return nil
			}
			return []any{s}
		}
		if !s.Exists || s.Value != o.Got {
			return nil
		}
		if s.Exact {
			if s.Index != o.Index {
				return nil
			}
			return []any{s}
		}
		if o.Index <= s.Index {
			return nil
		}
		return []any{v2State{Exists: true, Value: o.Got, Index: o.Index, Exact: true}}
	case v2Set:
		if o.Index <= s.Index {
			return nil
		}
		return []any{v2State{Exists: true, Value: o.Value, Index: o.Index, Exact: true}}
	}
	holds, sure := v2Holds(s, o)
	switch {
	case o.Err == "": // the compare held
		if (sure && !holds) || o.Index <= s.Index {
			return nil
		}
		if o.Kind == v2CAD {
			return []any{v2State{Index: o.Index, Exact: true}}
		}
		return []any{v2State{Exists: true, Value: o.Value, Index: o.Index, Exact: true}}
	case o.Code == 100: // key not found
		if s.Exists {
			return nil
		}
		return []any{s}
	case o.Code == 101: // compare failed
		if !s.Exists || (sure && holds) {
			return nil
		}
		return []any{s}
	}
	return nil
}

// resolveV2 checks the clients' writes against the v2 history: every
// acknowledged write is there at its index, every event of the history was
// written by a client, a failed compare never took effect; it places each
// write of unknown outcome (set and cas by their unique value, a
// compare-and-delete when only one unknown one can explain a delete event)
// and drops the rest as without effect. It returns the ops to check.
func resolveV2(ops []*v2Op, h *v2History) ([]*v2Op, []anomaly) {
	var anoms []anomaly
	add := func(kind, format string, args ...any) {
		anoms = append(anoms, anomaly{kind, fmt.Sprintf(format, args...)})
	}
	byValue := map[string]uint64{}
	for i := uint64(1); i <= h.Final; i++ {
		ev, ok := h.Events[i]
		if !ok {
			add(anomV2HistoryGap, "no event at index %d (history to %d)", i, h.Final)
			continue
		}
		if ev.Action == "set" || ev.Action == "compareAndSwap" {
			if j, dup := byValue[ev.Value]; dup {
				add(anomDuplicateWrite, "%s=%s at indexes %d and %d", ev.Key, ev.Value, j, i)
			}
			byValue[ev.Value] = i
		}
	}
	claimed := map[uint64]bool{}
	unknownCADs := map[uint64][]*v2Op{} // delete event index → unknown cads that could explain it
	for _, o := range ops {
		if !o.isWrite() || (o.Err != "" && !o.Unknown && o.Code != 101) {
			continue
		}
		if o.Kind == v2CAD {
			switch {
			case o.Unknown:
				for i := uint64(1); i <= h.Final; i++ {
					if ev := h.Events[i]; ev.Key == o.Key && ev.Action == "compareAndDelete" && ev.At >= o.Call {
						unknownCADs[i] = append(unknownCADs[i], o)
					}
				}
			case o.Err == "":
				ev, ok := h.Events[o.Index]
				if !ok || ev.Key != o.Key || ev.Action != "compareAndDelete" {
					add(anomLostWrite, "%s: the history has %+v at index %d", o, ev, o.Index)
				}
				claimed[o.Index] = true
			}
			continue
		}
		i, ok := byValue[o.Value]
		switch {
		case o.Err != "" && !o.Unknown: // a failed compare
			if ok {
				add(anomFailedCASApplied, "%s: written at index %d", o, i)
				claimed[i] = true
			}
		case o.Unknown && ok:
			claimed[i] = true
			ev := h.Events[i]
			o.Unknown, o.Err, o.Index = false, "", i
			o.Resolved = fmt.Sprintf("took effect at index %d, seen at %.3fs", i, ev.At.Seconds())
			o.Return = ev.At
			if ev.Key != o.Key {
				add(anomWrongRevision, "%s: value found on key %s", o, ev.Key)
			}
		case o.Unknown:
			o.Resolved = "no effect"
		case !ok:
			add(anomLostWrite, "%s: %s=%s is not in the v2 history", o, o.Key, o.Value)
		default:
			claimed[i] = true
			if ev := h.Events[i]; i != o.Index || ev.Key != o.Key {
				add(anomWrongRevision, "%s: the history has %s=%s at index %d", o, ev.Key, ev.Value, i)
			}
		}
	}
	for i := uint64(1); i <= h.Final; i++ {
		ev, ok := h.Events[i]
		if !ok || claimed[i] {
			continue
		}
		if ev.Action != "compareAndDelete" {
			add(anomPhantomWrite, "%s %s=%s at index %d", ev.Action, ev.Key, ev.Value, i)
			continue
		}
		var open []*v2Op
		for _, o := range unknownCADs[i] {
			if o.Unknown && o.Resolved == "" {
				open = append(open, o)
			}
		}
		switch len(open) {
		case 0:
			add(anomPhantomWrite, "compareAndDelete of %s at index %d", ev.Key, i)
		case 1:
			o := open[0]
			o.Unknown, o.Err, o.Index, o.Return = false, "", i, ev.At
			o.Resolved = fmt.Sprintf("took effect at index %d, seen at %.3fs", i, ev.At.Seconds())
		}
	}
	var keep []*v2Op
	for _, o := range ops {
		if o.Err != "" && !o.Unknown && o.Code != 100 && o.Code != 101 {
			continue // a read that failed, or a write refused before apply
		}
		if o.Unknown && o.Kind == v2CAD {
			if len(candidatesOf(o, unknownCADs)) == 0 {
				o.Resolved = "no effect"
				continue
			}
		} else if o.Unknown {
			continue
		}
		keep = append(keep, o)
	}
	return keep, anoms
}

// candidatesOf are the delete events an unplaced unknown cad could be.
func candidatesOf(o *v2Op, m map[uint64][]*v2Op) []uint64 {
	var out []uint64
	for i, os := range m {
		if slices.Contains(os, o) {
			out = append(out, i)
		}
	}
	return out
}

// checkV2Order checks across registers what the per-key model cannot: the
// v2 index is global, so a write that starts after another op returned has
// a higher index than any that op saw, and every answer's X-Etcd-Index is
// at least the index of every write that returned before it was sent.
func checkV2Order(ops []*v2Op) []anomaly {
	type seen struct {
		ret time.Duration
		idx uint64
		o   *v2Op
	}
	var done []seen
	for _, o := range ops {
		if o.Err != "" || o.Unknown || o.Return == never {
			continue
		}
		done = append(done, seen{o.Return, max(o.Index, o.Header), o})
	}
	slices.SortFunc(done, func(a, b seen) int { return cmp.Compare(a.ret, b.ret) })
	byCall := slices.Clone(done)
	slices.SortFunc(byCall, func(a, b seen) int { return cmp.Compare(a.o.Call, b.o.Call) })
	var anoms []anomaly
	var best seen
	j := 0
	for _, s := range byCall {
		for j < len(done) && done[j].ret < s.o.Call {
			if done[j].idx > best.idx {
				best = done[j]
			}
			j++
		}
		if best.o == nil {
			continue
		}
		o := s.o
		switch {
		case o.isWrite() && o.Index <= best.idx:
			anoms = append(anoms, anomaly{anomRevisionOrder, fmt.Sprintf("%s: index %d not above %d of %s, which returned before", o, o.Index, best.idx, best.o)})
		case !o.isWrite() && o.Header < best.idx:
			anoms = append(anoms, anomaly{anomRevisionOrder, fmt.Sprintf("%s: X-Etcd-Index %d below %d of %s, which returned before", o, o.Header, best.idx, best.o)})
		}
	}
	return anoms
}

// checkV2Watchers checks each long-poll against the history: waiting from
// index i on a key, a watcher gets the first event on that key with index
// at least i, as the history has it, and not before the write was sent.
// It also returns the polls checked.
func checkV2Watchers(ws []*v2Watcher, h *v2History, ops []*v2Op) ([]anomaly, int) {
	var anoms []anomaly
	calls := map[string]time.Duration{} // value → call time of the write
	for _, o := range ops {
		if o.Value != "" {
			calls[o.Value] = o.Call
		}
	}
	byKey := map[string][]uint64{}
	for i := uint64(1); i <= h.Final; i++ {
		if ev, ok := h.Events[i]; ok {
			byKey[ev.Key] = append(byKey[ev.Key], i)
		}
	}
	n := 0
	for _, w := range ws {
		for _, p := range w.polls {
			n++
			ev := p.Event
			bad := func(format string, args ...any) {
				anoms = append(anoms, anomaly{anomV2Watch, fmt.Sprintf("%s, waiting from %d: got %s %s=%q at %d: ", w, p.From, ev.Action, ev.Key, ev.Value, ev.Index) + fmt.Sprintf(format, args...)})
			}
			if ev.Index > h.Final {
				continue // after the checked history
			}
			idx := byKey[w.key]
			k := sort.Search(len(idx), func(i int) bool { return idx[i] >= p.From })
			switch {
			case ev.Key != w.key:
				bad("another key")
			case k == len(idx) || idx[k] != ev.Index:
				want := "none yet"
				if k < len(idx) {
					want = fmt.Sprint(idx[k])
				}
				bad("the first event at or after %d is at %s", p.From, want)
			default:
				he := h.Events[ev.Index]
				if he.Action != ev.Action || he.Value != ev.Value || he.Prev != ev.Prev {
					bad("the history has %s %q (prev %q)", he.Action, he.Value, he.Prev)
				} else if c, ok := calls[ev.Value]; ok && ev.Value != "" && ev.At < c {
					bad("received at %.3fs, before the write was sent at %.3fs", ev.At.Seconds(), c.Seconds())
				}
			}
		}
	}
	return anoms, n
}

// checkV2Linearizable runs porcupine over the v2 ops.
func checkV2Linearizable(ops []*v2Op, timeout time.Duration) linearizability {
	hist := make([]porcupine.Operation, 0, len(ops))
	for _, o := range ops {
		hist = append(hist, porcupine.Operation{ClientId: o.Client, Input: o, Output: o, Call: int64(o.Call), Return: int64(o.Return)})
	}
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(v2Model.ToModel(), hist, timeout)
	return linearizability{Result: res, Ops: len(hist), Duration: time.Since(start), Info: info}
}
