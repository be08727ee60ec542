package watch

import (
	"sync"
	"sync/atomic"
	"time"
)

// sendGate bounds the CPU that sending events takes, so that however many
// watchers there are, writes find a CPU: watchers fall behind instead (in
// order, nothing lost: their events wait in the logs, or in the backend
// once they are moved aside), and their responses grow.
//
//   - Slots: at most len(slots) streams (half the CPUs) send events at
//     once; the others wait in line (a channel's waiters are served in
//     order), so the runnable goroutines of fan-out stay few and a write's
//     goroutines do not queue behind a hundred streams'.
//   - Turns: a stream keeps its slot for a whole pass over its watchers, up
//     to turnLength, then goes to the back of the line. A send that blocks
//     (a client that does not read) loses the slot after sendSlotHold, and
//     a stream that waited that long for one sends without it.
//   - Budget: while writes are being applied (an OnEvents in the last
//     writeWindow), each turn is charged against a budget that grows by
//     share seconds per second (at most budgetBurst ahead); a stream waits
//     for the budget to be positive before taking a slot. A turn costs the
//     time it held its slot, or, when more, what its responses cost the
//     receiving side (recvEventCost per event, recvResponseCost per
//     response): clients decode an event for several times what sending it
//     costs the server, and on a shared machine (or with the writers in the
//     same process as the watchers) that work takes the writes' CPU just the
//     same. When no write comes, sends are not limited by time at all.
type sendGate struct {
	slots chan struct{}
	share float64 // CPU seconds per second the budget grows by; 0: no budget
	start time.Time
	// lastWrite is when OnEvents last ran (ns since start).
	lastWrite atomic.Int64

	mu     sync.Mutex
	tokens time.Duration // may be negative (owed)
	refill time.Duration // when tokens were last refilled (since start)
}

const (
	// turnLength is how long a stream keeps its slot across responses.
	turnLength = 2 * time.Millisecond
	// sendSlotHold bounds how long a send holds a slot, and waits for one.
	sendSlotHold = 100 * time.Millisecond
	// writeWindow: writes count as active this long after the last one.
	writeWindow = 100 * time.Millisecond
	// budgetBurst is the most budget that idle time accumulates.
	budgetBurst = 5 * time.Millisecond
	// budgetNap bounds one wait for budget (the budget is then looked at
	// again: writes may have stopped).
	budgetNap = 10 * time.Millisecond
	// recvEventCost and recvResponseCost model a client's CPU per event
	// and per response (clientv3 decoding and handing them to its watcher
	// goroutines; measured on the harness's 2-core machine, roughly).
	recvEventCost    = time.Microsecond
	recvResponseCost = 5 * time.Microsecond
)

func newSendGate(slots int, share float64) *sendGate {
	return &sendGate{slots: make(chan struct{}, max(1, slots)), share: share, start: time.Now()}
}

func (g *sendGate) now() time.Duration { return time.Since(g.start) }

// wrote records a write (OnEvents).
func (g *sendGate) wrote() { g.lastWrite.Store(int64(g.now())) }

func (g *sendGate) writesActive(now time.Duration) bool {
	return now-time.Duration(g.lastWrite.Load()) < writeWindow
}

// budget refills and returns the budget, and whether writes are active.
func (g *sendGate) budget() (time.Duration, bool) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refillLocked(now)
	return g.tokens, g.writesActive(now)
}

// refillLocked adds the budget grown since the last refill. Caller holds mu.
func (g *sendGate) refillLocked(now time.Duration) {
	if d := now - g.refill; d > 0 {
		g.tokens = min(g.tokens+time.Duration(float64(d)*g.share), budgetBurst)
		g.refill = now
	}
}

// charge takes cost from the budget when writes are active.
func (g *sendGate) charge(cost time.Duration) { g.settle(cost, 0) }

// settle charges a turn that cost cost and reserved reserved: the
// difference while writes are active; otherwise the reservation goes back
// (within the burst).
func (g *sendGate) settle(cost, reserved time.Duration) {
	if g.share <= 0 {
		return
	}
	active := g.writesActive(g.now())
	g.mu.Lock()
	if active {
		g.tokens -= cost - reserved
	} else {
		g.tokens = min(g.tokens+reserved, budgetBurst)
	}
	g.mu.Unlock()
}

// waitBudget returns when the budget allows a turn, or stop closes, and
// what it took from the budget for it: while writes are active a turn
// reserves turnLength at once (checked and taken under one lock), so that
// of many streams waiting for the budget only as many go as it covers, not
// all of them; end settles the difference.
func (g *sendGate) waitBudget(stop <-chan struct{}) (reserved time.Duration) {
	if g.share <= 0 {
		return 0
	}
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		now := g.now()
		g.mu.Lock()
		g.refillLocked(now)
		if !g.writesActive(now) {
			g.mu.Unlock()
			return 0
		}
		tokens := g.tokens
		if tokens >= 0 {
			g.tokens -= turnLength
			g.mu.Unlock()
			return turnLength
		}
		g.mu.Unlock()
		d := min(time.Duration(float64(-tokens)/g.share), budgetNap)
		if t == nil {
			t = time.NewTimer(d)
		} else {
			t.Reset(d)
		}
		select {
		case <-t.C:
		case <-stop:
			return 0
		}
	}
}

// turn is a stream's hold on a send slot. The stream goroutine calls
// take and end; the timer may end a hold that lasts too long.
type turn struct {
	g     *sendGate
	stop  <-chan struct{}
	timer *time.Timer // ends a hold after sendSlotHold

	mu    sync.Mutex
	held  bool          // a slot is held
	since time.Duration // when the turn began (held or not)
	open  bool          // a turn is running (with or without a slot)
	// events and responses sent in the turn, and the budget it reserved
	// (stream goroutine only).
	events, responses int
	reserved          time.Duration
}

func newTurn(g *sendGate, stop <-chan struct{}) *turn {
	t := &turn{g: g, stop: stop}
	t.timer = time.AfterFunc(time.Hour, t.expire)
	t.timer.Stop()
	return t
}

// take makes sure the stream may send a response: it keeps the current
// turn while it is shorter than turnLength, otherwise ends it and waits
// for budget and a slot (at most sendSlotHold for the slot).
func (t *turn) take() {
	t.mu.Lock()
	if t.open && t.g.now()-t.since < turnLength {
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	t.end()
	reserved := t.g.waitBudget(t.stop)
	held := false
	select {
	case t.g.slots <- struct{}{}:
		held = true
	default:
		w := time.NewTimer(sendSlotHold)
		select {
		case t.g.slots <- struct{}{}:
			held = true
		case <-w.C:
		case <-t.stop:
		}
		w.Stop()
	}
	t.mu.Lock()
	t.open, t.held, t.since = true, held, t.g.now()
	t.events, t.responses, t.reserved = 0, 0, reserved
	t.mu.Unlock()
	if held {
		t.timer.Reset(sendSlotHold)
	}
}

// end ends the current turn, if any, and charges it: the time it held a
// slot or its responses' cost to their receivers, whichever is more (the
// time of a turn that waited in vain for a slot, because another stream's
// send was blocked, is not charged).
func (t *turn) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.open {
		return
	}
	t.open = false
	t.timer.Stop()
	cost := time.Duration(t.events)*recvEventCost + time.Duration(t.responses)*recvResponseCost
	if t.held {
		t.held = false
		cost = max(t.g.now()-t.since, cost)
		<-t.g.slots
	}
	t.g.settle(cost, t.reserved)
}

// sent records a response of n events sent in the turn.
func (t *turn) sent(n int) {
	t.events += n
	t.responses++
}

// expire gives up the slot of a hold older than sendSlotHold (its send is
// blocked: waiting for a client, not using a CPU, so it is not charged);
// the turn goes on without it. A stale call for a later hold finds it
// younger and does nothing.
func (t *turn) expire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held && t.g.now()-t.since >= sendSlotHold {
		t.held = false
		<-t.g.slots
	}
}
