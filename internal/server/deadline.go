package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// sharedDeadline hands out contexts that expire about timeout after the
// call. Callers within the same grain share one context, so a proposal costs
// no timer, channel or context of its own: at thousands of proposals a
// second a context.WithTimeout each (timer, Done channel, the parent's
// children map) was a measurable share of the server's CPU and garbage.
//
// Invariant: a context returned at time t expires in (t+timeout-grain,
// t+timeout]. The timeout is a bound on a wait, not a promise to the
// millisecond, and grain is small next to it.
type sharedDeadline struct {
	timeout time.Duration
	grain   time.Duration

	mu  sync.Mutex // serialises rotation
	cur atomic.Pointer[deadlineSlot]
}

type deadlineSlot struct {
	ctx    context.Context
	cancel context.CancelFunc
	// reuseUntil is the unix-nano time after which callers need a new slot.
	reuseUntil int64
}

// newSharedDeadline returns contexts expiring timeout after the call, give
// or take grain = timeout/100 (at most 50 ms).
func newSharedDeadline(timeout time.Duration) *sharedDeadline {
	grain := min(timeout/100, 50*time.Millisecond)
	return &sharedDeadline{timeout: timeout, grain: grain}
}

// get returns a context that expires timeout (minus at most grain) after now.
func (d *sharedDeadline) get(now time.Time) context.Context {
	n := now.UnixNano()
	if s := d.cur.Load(); s != nil && n < s.reuseUntil {
		return s.ctx
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.cur.Load(); s != nil && n < s.reuseUntil {
		return s.ctx
	}
	// The slot's own timer cancels it at the deadline; older slots stay
	// valid for the requests holding them.
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(d.timeout))
	d.cur.Store(&deadlineSlot{ctx: ctx, cancel: cancel, reuseUntil: n + int64(d.grain)})
	return ctx
}

// stop releases the current slot's timer.
func (d *sharedDeadline) stop() {
	if s := d.cur.Load(); s != nil {
		s.cancel()
	}
}
