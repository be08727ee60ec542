package watch

import (
	"testing"
	"time"
)

// While writes are active, time charged beyond the budget makes senders
// wait until the budget has grown back (share seconds per second); with no
// write, or no share, nobody waits for budget.
func TestSendGateBudget(t *testing.T) {
	stop := make(chan struct{})
	t.Run("writes active: waits for the debt", func(t *testing.T) {
		g := newSendGate(1, 0.5)
		g.wrote()
		g.charge(20 * time.Millisecond) // 40ms of refill at half a CPU
		start := time.Now()
		for time.Since(start) < time.Second && g.writesActive(g.now()) {
			g.wrote() // keep writes active while it waits
			if tokens, _ := g.budget(); tokens >= 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		g.wrote()
		g.waitBudget(stop)
		if d := time.Since(start); d < 35*time.Millisecond {
			t.Fatalf("budget back after %v, want at least 35ms (20ms owed at share 0.5)", d)
		}
	})
	t.Run("no write: no wait", func(t *testing.T) {
		g := newSendGate(1, 0.5)
		g.lastWrite.Store(-int64(time.Hour))
		g.charge(time.Hour) // not charged: writes are not active
		if tokens, active := g.budget(); active || tokens < 0 {
			t.Fatalf("tokens %v active %v, want no debt and inactive", tokens, active)
		}
		done := make(chan struct{})
		go func() { g.waitBudget(stop); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("waitBudget blocked with no write")
		}
	})
	t.Run("no share: no budget", func(t *testing.T) {
		g := newSendGate(1, 0)
		g.wrote()
		g.charge(time.Hour)
		done := make(chan struct{})
		go func() { g.waitBudget(stop); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("waitBudget blocked with share 0")
		}
	})
}

// A turn keeps its slot across sends; end gives it back to the next
// stream.
func TestTurnHoldsSlot(t *testing.T) {
	g := newSendGate(1, 0)
	stop := make(chan struct{})
	a, b := newTurn(g, stop), newTurn(g, stop)
	a.take()
	a.take() // same turn
	if len(g.slots) != 1 {
		t.Fatalf("%d slots taken, want 1", len(g.slots))
	}
	select {
	case g.slots <- struct{}{}:
		t.Fatal("a second slot was free while the first stream holds the only one")
	default:
	}
	a.end()
	if len(g.slots) != 0 {
		t.Fatalf("%d slots taken after the turn ended, want 0", len(g.slots))
	}
	b.take()
	b.mu.Lock()
	held := b.held
	b.mu.Unlock()
	if !held {
		t.Fatal("the next stream did not get the free slot")
	}
	b.end()
	if len(g.slots) != 0 {
		t.Fatalf("%d slots still taken", len(g.slots))
	}
}

// A turn is charged what its responses cost their receivers when that is
// more than the time it held its slot.
func TestTurnChargesReceiverCost(t *testing.T) {
	g := newSendGate(1, 0.5)
	g.wrote()
	tu := newTurn(g, make(chan struct{}))
	tu.take()
	tu.sent(100000) // 100ms of receivers' work at recvEventCost
	g.wrote()
	tu.end()
	if tokens, _ := g.budget(); tokens > -40*time.Millisecond {
		t.Fatalf("budget %v after a turn of 100,000 events, want at most -40ms", tokens)
	}
}

// While writes are active a turn reserves its length from the budget as it
// starts: of streams waiting for budget, the next one waits until that is
// paid back instead of all going at once.
func TestSendGateReservesTurns(t *testing.T) {
	g := newSendGate(1, 0.5)
	stop := make(chan struct{})
	g.wrote()
	if r := g.waitBudget(stop); r != turnLength {
		t.Fatalf("reserved %v, want %v", r, turnLength)
	}
	start := time.Now()
	g.wrote()
	g.waitBudget(stop)
	// 2ms reserved at half a CPU: 4ms to pay back (less the refill of the
	// moments between, and at most the burst already there).
	if d := time.Since(start); d < 3*time.Millisecond && g.writesActive(g.now()) {
		t.Fatalf("second turn allowed after %v, want the first one's reservation paid back first", d)
	}
}
