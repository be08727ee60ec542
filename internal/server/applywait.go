package server

import (
	"sync"
	"sync/atomic"
)

// indexWaiter lets readers wait until the applied index reaches a value.
//
// Threading: Wait from any goroutine; Trigger from the apply goroutine with
// non-decreasing indexes.
type indexWaiter struct {
	mu sync.Mutex
	// applied is written under mu and read without it (every proposal
	// checks it).
	applied atomic.Uint64
	waits   map[uint64][]chan struct{}
	// Invariant: every key of waits > applied.
}

func newIndexWaiter(applied uint64) *indexWaiter {
	w := &indexWaiter{waits: map[uint64][]chan struct{}{}}
	w.applied.Store(applied)
	return w
}

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Wait returns a channel closed once the applied index is at least idx.
func (w *indexWaiter) Wait(idx uint64) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if idx <= w.applied.Load() {
		return closedCh
	}
	ch := make(chan struct{})
	w.waits[idx] = append(w.waits[idx], ch)
	return ch
}

// Trigger records that everything up to idx is applied.
func (w *indexWaiter) Trigger(idx uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if idx <= w.applied.Load() {
		return
	}
	w.applied.Store(idx)
	for i, chs := range w.waits {
		if i <= idx {
			for _, ch := range chs {
				close(ch)
			}
			delete(w.waits, i)
		}
	}
}

// Applied is the last triggered index.
func (w *indexWaiter) Applied() uint64 { return w.applied.Load() }
