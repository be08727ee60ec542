//go:build invariants || race

package wal

import "fmt"

// checkInvariants panics when the WAL's bookkeeping breaks an Invariant:
// comment. It runs only under the invariants or race build tags.
func (w *WAL) checkInvariants() {
	if !w.ready {
		return
	}
	if w.off <= 0 {
		panic(fmt.Sprintf("wal: invariant 0 < off broken: off=%d", w.off))
	}
	for i := 1; i < len(w.segs); i++ {
		a, b := w.segs[i-1], w.segs[i]
		if b.seq != a.seq+1 || a.index > b.index {
			panic(fmt.Sprintf("wal: invariant on segment order broken: %s before %s", a.name, b.name))
		}
	}
}
