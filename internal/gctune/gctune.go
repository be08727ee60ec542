// Package gctune sizes the Go garbage collector's headroom for a member:
// generous while the live heap is small and the member busy, tight once the
// heap is large.
//
// With GOGC=100 the collector runs each time the heap grows by its live
// size. A member's live heap is small next to its allocation rate (tens of
// MiB live, a few KiB of short-lived garbage per request, most of it in
// gRPC), so under load it collected several times a second and spent a
// sixth of the process's CPU in marking and assists, much of it scanning the
// stacks of parked request goroutines.
//
// A large member has the opposite problem: its live heap is the key index
// (a few hundred bytes per key), and GOGC=100 lets the process grow to twice
// that, which is most of its memory.
//
// After each collection the tuner sizes the heap's headroom (the garbage
// allowed before the next collection) to what the process allocates in
// Window at its current rate, at most Cap, but never less than half the live
// heap (GOGC=50): a small busy member collects about twice a second instead
// of five to ten times; an idle one, and one whose live heap exceeds 2×Cap,
// runs with GOGC=50 and needs about a quarter less memory than with the
// default, for a few percent more CPU in the collector.
//
// When the load stops, nothing would collect the garbage the generous
// headroom let accumulate (an idle process allocates too little to reach
// the next collection for minutes), so the process would keep the memory of
// its last burst. The tuner therefore looks at the allocation rate every
// IdleCheck: when a headroom above GOGC=50 is in force and the process
// allocated less than IdleRate per second since the last look, after a
// busier period, it collects and returns the freed memory to the OS, once
// per idle period (debug.FreeOSMemory); the collection's re-tuning then
// sets GOGC=50 until the load comes back.
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

// Idle detection: below IdleRate bytes allocated per second over an
// IdleCheck period, a tuned-up heap is collected and returned to the OS.
const (
	IdleCheck = time.Second
	IdleRate  = 1 << 20
)

// GOGC bounds: maxPercent for a tiny busy heap, minPercent otherwise.
const (
	minPercent = 50
	maxPercent = 1000
)

// Headroom is the garbage to allow before the next collection when the
// process allocates rate bytes per second and live bytes survive: window's
// worth of allocation, at most limit, and at least live/2.
func Headroom(rate float64, window time.Duration, limit, live uint64) uint64 {
	h := limit
	if r := rate * window.Seconds(); r < float64(limit) {
		h = uint64(r)
	}
	return max(h, live*minPercent/100)
}

// Percent is the GOGC value that makes the next collection start at about
// live+headroom, within [minPercent, maxPercent].
func Percent(live, headroom uint64) int {
	if live == 0 {
		live = 1
	}
	p := headroom * 100 / live
	switch {
	case p < minPercent:
		return minPercent
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

	stopc    chan struct{}
	idleTot  uint64 // cumulative allocated bytes at the last idle check (idle goroutine only)
	busy     bool   // a busy period was seen since the last idle collection (idle goroutine only)
	idleRuns atomic.Int64
}

// Start begins tuning; call Stop to restore the previous GOGC. It must not
// be used when the operator set GOGC.
func Start(limit uint64, window time.Duration) *Tuner {
	return start(limit, window, IdleCheck)
}

func start(limit uint64, window, idleEvery time.Duration) *Tuner {
	t := &Tuner{
		limit:  limit,
		window: window,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/allocs:bytes"}},
	}
	t.prev = debug.SetGCPercent(100)
	t.last = 100
	t.stopc = make(chan struct{})
	t.busy = true // start-up was
	t.adjust()
	t.arm()
	go t.idleLoop(idleEvery, IdleRate)
	return t
}

// idleLoop collects a tuned-up heap once the process goes idle (see the
// package documentation).
func (t *Tuner) idleLoop(every time.Duration, rate uint64) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	for {
		select {
		case <-t.stopc:
			return
		case <-tick.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		total := sample[0].Value.Uint64()
		allocated := total - t.idleTot
		t.idleTot = total
		if allocated >= uint64(float64(rate)*every.Seconds()) {
			t.busy = true
			continue
		}
		if !t.busy || t.GOGC() <= minPercent {
			continue
		}
		// Once per idle period. The collection re-arms the tuner, which
		// sees the low rate and, with a live heap of more than a couple of
		// MiB, sets GOGC=50.
		t.busy = false
		debug.FreeOSMemory()
		t.idleRuns.Add(1)
	}
}

// IdleCollections is how many times the tuner collected an idle heap.
func (t *Tuner) IdleCollections() int64 { return t.idleRuns.Load() }

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
	live := t.sample[0].Value.Uint64()
	p := Percent(live, Headroom(rate, t.window, t.limit, live))
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
	close(t.stopc)
	debug.SetGCPercent(t.prev)
}

// GOGC reports the GOGC the tuner set last.
func (t *Tuner) GOGC() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}
