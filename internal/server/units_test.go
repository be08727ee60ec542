package server

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReqIDLayout(t *testing.T) {
	start := time.UnixMilli(0x0123_4567_89ab) // 41 bits: only the low 40 are kept
	for _, member := range []uint64{0x8e9e05c52164694d, 1, 0xffff, 0x1_0000} {
		g := newReqIDGen(member, start)
		first := g.Next()
		if top := first >> 48; top != member&0xffff {
			t.Fatalf("member %x: top 16 bits %x, want %x", member, top, member&0xffff)
		}
		wantLow := (uint64(0x23_4567_89ab) << 8) + 1 // ms & (1<<40-1), shifted past the 8-bit counter
		if low := first & (1<<48 - 1); low != wantLow {
			t.Fatalf("member %x: low 48 bits %x, want %x", member, low, wantLow)
		}
		if second := g.Next(); second != first+1 {
			t.Fatalf("IDs do not count up by one: %x then %x", first, second)
		}
	}
	// At the end of the 48-bit suffix the counter wraps without touching
	// the member prefix.
	g := newReqIDGen(0xabcd, start)
	g.suffix.Store(suffixMask)
	if id := g.Next(); id != 0xabcd<<48 {
		t.Fatalf("wrapped ID %x, want %x", id, uint64(0xabcd)<<48)
	}
	// Members whose IDs share the low 16 bits still differ by start time.
	a, b := newReqIDGen(0x1_2222, start), newReqIDGen(0x2_2222, start.Add(time.Millisecond))
	if a.Next() == b.Next() {
		t.Fatal("IDs of two members collide")
	}
}

func TestReqIDUnique(t *testing.T) {
	g := newReqIDGen(0x1234, time.Now())
	const workers, per = 8, 5000
	ids := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				ids[w] = append(ids[w], g.Next())
			}
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, l := range ids {
		for _, id := range l {
			if seen[id] {
				t.Fatalf("duplicate ID %x", id)
			}
			seen[id] = true
		}
	}
}

func TestWaiters(t *testing.T) {
	w := newWaiters()
	// IDs in the same shard and in different ones.
	ids := []uint64{1, 17, 33, 2, 1 << 60}
	chs := map[uint64]<-chan applyResult{}
	for _, id := range ids {
		chs[id] = w.Register(id, nil)
	}
	w.Trigger(17, applyResult{resp: "r17"})
	select {
	case r := <-chs[17]:
		if r.resp != "r17" {
			t.Fatalf("waiter 17 got %v", r.resp)
		}
	default:
		t.Fatal("Trigger did not deliver")
	}
	// Delivered once: a second Trigger neither blocks nor delivers.
	w.Trigger(17, applyResult{resp: "again"})
	select {
	case r := <-chs[17]:
		t.Fatalf("second delivery %v", r.resp)
	default:
	}
	// A canceled waiter gets nothing; Trigger for it does not block.
	w.Cancel(1)
	w.Trigger(1, applyResult{resp: "late"})
	select {
	case r := <-chs[1]:
		t.Fatalf("canceled waiter got %v", r.resp)
	default:
	}
	// Unknown IDs are ignored; the others still wait for their own result.
	w.Trigger(999, applyResult{})
	for _, id := range []uint64{33, 2, 1 << 60} {
		select {
		case r := <-chs[id]:
			t.Fatalf("waiter %d got someone else's result %v", id, r)
		default:
		}
		w.Trigger(id, applyResult{resp: id})
		if r := <-chs[id]; r.resp != id {
			t.Fatalf("waiter %d got %v", id, r.resp)
		}
	}
}

func TestWaitersConcurrent(t *testing.T) {
	w := newWaiters()
	const n = 2000
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := range uint64(n) {
		ch := w.Register(i, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := <-ch; r.resp != i {
				errc <- errors.New("wrong result")
			}
		}()
	}
	for i := range uint64(n) {
		go w.Trigger(i, applyResult{resp: i})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("not every waiter was woken")
	}
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestIndexWaiter(t *testing.T) {
	w := newIndexWaiter(10)
	if !closed(w.Wait(0)) || !closed(w.Wait(10)) {
		t.Fatal("waits at or below applied must be closed at once")
	}
	w11, w12a, w12b, w20 := w.Wait(11), w.Wait(12), w.Wait(12), w.Wait(20)
	if closed(w11) || closed(w12a) || closed(w20) {
		t.Fatal("a wait above applied closed early")
	}
	w.Trigger(12)
	if !closed(w11) || !closed(w12a) || !closed(w12b) || closed(w20) {
		t.Fatalf("after Trigger(12): 11 %v 12 %v/%v 20 %v", closed(w11), closed(w12a), closed(w12b), closed(w20))
	}
	// Going back is ignored.
	w.Trigger(5)
	if w.Applied() != 12 {
		t.Fatalf("applied went back to %d", w.Applied())
	}
	if closed(w20) {
		t.Fatal("Trigger(5) closed a wait for 20")
	}
	w.Trigger(25)
	if !closed(w20) || w.Applied() != 25 || !closed(w.Wait(25)) || closed(w.Wait(26)) {
		t.Fatal("Trigger(25) did not release 20")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for idx := range w.waits {
		// Invariant: every key of waits > applied.
		if idx <= w.applied.Load() {
			t.Fatalf("wait for %d kept with applied %d", idx, w.applied.Load())
		}
	}
}

func TestDiskGuard(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		maxReq uint
		want   uint64
	}{
		{0, walSegmentBytes + 8*mib},
		{1536 * 1024, walSegmentBytes + 4*1536*1024 + 8*mib},
		{10 * mib, walSegmentBytes + 40*mib + 8*mib},
	} {
		g := newDiskGuard(tc.maxReq, t.TempDir())
		if g.reserve != tc.want {
			t.Fatalf("max request %d: reserve %d, want %d", tc.maxReq, g.reserve, tc.want)
		}
		// Pretend statfs just ran and found the given free space.
		for _, free := range []uint64{0, tc.want - 1, tc.want, tc.want + 1, 1 << 50} {
			g.checkedA.Store(time.Now().Add(time.Hour).UnixNano())
			g.freeA.Store(free)
			err := g.check()
			if refuse := free < tc.want; refuse != errors.Is(err, ErrNoDiskSpace) {
				t.Fatalf("reserve %d, free %d: err %v", tc.want, free, err)
			}
			if err != nil && !strings.Contains(err.Error(), "bytes free") {
				t.Fatalf("error lacks the numbers: %v", err)
			}
		}
	}
	// Paths that cannot be stat'ed do not block writes; an existing one is
	// measured on the first check.
	g := newDiskGuard(0, "/nonexistent/cairn-test")
	if err := g.check(); err != nil {
		t.Fatalf("unmeasurable path: %v", err)
	}
	g = newDiskGuard(0, t.TempDir())
	_ = g.check()
	if g.freeA.Load() == 0 || g.freeA.Load() == ^uint64(0) {
		t.Fatalf("free space not measured: %d", g.freeA.Load())
	}
}
