package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live, floor uint64
		want        int
	}{
		{0, 0, minPercent},
		{0, 64 * mib, maxPercent},
		{16 * mib, 0, minPercent},
		{1 * mib, 64 * mib, maxPercent},
		{16 * mib, 64 * mib, 400},
		{32 * mib, 64 * mib, 200},
		{64 * mib, 64 * mib, 100},
		{500 * mib, 64 * mib, minPercent},
	} {
		if got := Percent(tc.live, tc.floor); got != tc.want {
			t.Errorf("Percent(%d MiB, %d MiB) = %d, want %d", tc.live/mib, tc.floor/mib, got, tc.want)
		}
	}
}

func TestHeadroom(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		rate   float64
		window time.Duration
		live   uint64
		want   uint64
	}{
		{0, time.Second, 0, 0},
		{0, time.Second, 10 * mib, 5 * mib},
		{10 * mib, 500 * time.Millisecond, 4 * mib, 5 * mib},
		{100 * mib, 500 * time.Millisecond, 20 * mib, 50 * mib},
		{1000 * mib, 500 * time.Millisecond, 20 * mib, 64 * mib},
		{1000 * mib, 500 * time.Millisecond, 300 * mib, 150 * mib},
	} {
		if got := Headroom(tc.rate, tc.window, 64*mib, tc.live); got != tc.want {
			t.Errorf("Headroom(%v MiB/s, %v, live %d MiB) = %d, want %d", tc.rate/mib, tc.window, tc.live/mib, got, tc.want)
		}
	}
}

// garbage allocates n bytes that die at once, so the tuner sees a rate.
func garbage(n int) {
	for i := 0; i < n/4096; i++ {
		sink = make([]byte, 4096)
	}
}

var sink []byte

// The tuner follows the live heap from one collection to the next: GOGC
// drops to the minimum once live is well above the limit, rises again when
// it shrinks, and goes back to its old value on Stop.
func TestTunerFollowsCollections(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	const limit = 8 << 20

	// An hour's window: any allocation rate asks for the whole limit.
	tu := Start(limit, time.Hour)
	waitGOGC := func(what string, ok func(int) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok(tu.GOGC()) {
			if time.Now().After(deadline) {
				t.Fatalf("GOGC = %d, still not %s", tu.GOGC(), what)
			}
			garbage(1 << 20)
			runtime.GC()
			runtime.Gosched()
		}
	}
	waitGOGC("raised for a small heap", func(p int) bool { return p > 100 })

	big := make([]byte, 4*limit)
	for i := range big {
		big[i] = byte(i)
	}
	waitGOGC("the minimum with a heap above twice the limit", func(p int) bool { return p == minPercent })
	runtime.KeepAlive(big)
	big = nil
	waitGOGC("raised again once the heap shrank", func(p int) bool { return p > 100 })

	tu.Stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("after Stop GOGC = %d, want the 100 in force before Start", got)
	}
}

// With a negligible allocation rate (a window of a nanosecond) GOGC is the
// minimum: an idle member keeps a small footprint.
func TestTunerKeepsIdleProcessSmall(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	tu := Start(64<<20, time.Nanosecond)
	defer tu.Stop()
	for range 5 {
		garbage(1 << 20)
		runtime.GC()
		runtime.Gosched()
	}
	if got := tu.GOGC(); got != minPercent {
		t.Fatalf("GOGC = %d, want %d", got, minPercent)
	}
}

// A heap tuned up for load is collected (and its memory returned) once the
// process stops allocating, and only once per idle period.
func TestTunerCollectsWhenIdle(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	const every = 20 * time.Millisecond
	tu := start(64<<20, DefaultWindow, every)
	defer tu.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for tu.GOGC() <= 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC = %d, never raised", tu.GOGC())
		}
		garbage(1 << 20)
		runtime.GC()
	}
	deadline = time.Now().Add(30 * time.Second)
	for tu.IdleCollections() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle for 30s without an idle collection (GOGC %d)", tu.GOGC())
		}
		time.Sleep(every) // idle: allocate (almost) nothing
	}
	time.Sleep(20 * every)
	if n := tu.IdleCollections(); n != 1 {
		t.Fatalf("%d idle collections in one idle period, want 1", n)
	}
}
