// Package gctune keeps the Go garbage collector from running too often while
// the live heap is small.
//
// With GOGC=100 the collector runs each time the heap grows by its live
// size. A member's live heap is small next to its allocation rate (tens of
// MiB live, a few KiB of short-lived garbage per request, most of it in
// gRPC), so under load it collected several times a second and spent a
// sixth of the process's CPU in marking and assists, much of it scanning the
// stacks of parked request goroutines.
//
// After each collection the tuner sizes the heap's headroom (the garbage
// allowed before the next collection) to what the process allocates in
// Window at its current rate, at most Cap: a busy member collects about
// twice a second instead of five to ten times, an idle or lightly loaded one
// keeps GOGC=100 and its small footprint. The headroom is never below what
// GOGC=100 gives, so once the live heap exceeds Cap the tuner changes
// nothing and memory use is what it would be without it.
package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults cairn uses: up to 64 MiB of headroom, sized to half a second of
// allocation.
const (
	DefaultCap    = 64 << 20
	DefaultWindow = 500 * time.Millisecond
)

// maxPercent bounds GOGC for a tiny heap (an idle member).
const maxPercent = 1000

// Headroom is the garbage to allow before the next collection when the
// process allocates rate bytes per second: window's worth, at most limit.
func Headroom(rate float64, window time.Duration, limit uint64) uint64 {
	h := rate * window.Seconds()
	if h >= float64(limit) {
		return limit
	}
	return uint64(h)
}

// Percent is the GOGC value that makes the next collection start at about
// live+headroom, never below 100 and never above maxPercent.
func Percent(live, headroom uint64) int {
	if live == 0 {
		live = 1
	}
	p := headroom * 100 / live
	switch {
	case p < 100:
		return 100
	case p > maxPercent:
		return maxPercent
	}
	return int(p)
}

// Tuner re-computes GOGC after every collection.
type Tuner struct {
	limit   uint64
	window  time.Duration
	stopped atomic.Bool

	mu      sync.Mutex // guards the fields below
	sample  []metrics.Sample
	lastAt  time.Time // when adjust last ran
	lastTot uint64    // cumulative allocated bytes then
	last    int       // GOGC set last
	prev    int       // GOGC before Start
}

// Start begins tuning; call Stop to restore the previous GOGC. It must not
// be used when the operator set GOGC.
func Start(limit uint64, window time.Duration) *Tuner {
	t := &Tuner{
		limit:  limit,
		window: window,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/allocs:bytes"}},
	}
	t.prev = debug.SetGCPercent(100)
	t.last = 100
	t.adjust()
	t.arm()
	return t
}

// sentinel is garbage on purpose: its clean-up runs after the collection
// that frees it, which re-arms the tuner for the next one.
type sentinel struct{ _ *int }

func (t *Tuner) arm() {
	runtime.AddCleanup(&sentinel{}, func(t *Tuner) {
		if t.stopped.Load() {
			return
		}
		t.adjust()
		t.arm()
	}, t)
}

func (t *Tuner) adjust() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped.Load() {
		return
	}
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 || t.sample[1].Value.Kind() != metrics.KindUint64 {
		return
	}
	now, total := time.Now(), t.sample[1].Value.Uint64()
	var rate float64
	if dt := now.Sub(t.lastAt).Seconds(); !t.lastAt.IsZero() && dt > 0 && total >= t.lastTot {
		rate = float64(total-t.lastTot) / dt
	}
	t.lastAt, t.lastTot = now, total
	p := Percent(t.sample[0].Value.Uint64(), Headroom(rate, t.window, t.limit))
	// Small changes are not worth a pacer update.
	if d := p - t.last; d > t.last/10 || -d > t.last/10 {
		debug.SetGCPercent(p)
		t.last = p
	}
}

// Stop ends tuning and restores the GOGC in force before Start.
func (t *Tuner) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped.Swap(true) {
		return
	}
	debug.SetGCPercent(t.prev)
}

// GOGC reports the GOGC the tuner set last.
func (t *Tuner) GOGC() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}
