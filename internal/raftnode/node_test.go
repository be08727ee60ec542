package raftnode

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// wait is the deadline for anything a test waits on.
const wait = 10 * time.Second

// fakePersister records what the Ready loop makes durable and in which
// order. It can fail a chosen Save, and hold Saves until the test releases
// them.
type fakePersister struct {
	mu        sync.Mutex
	saves     int               // Save calls so far
	saved     map[uint64]uint64 // entry index → term of the entry made durable there
	lastIndex uint64            // highest entry index saved
	commit    uint64            // highest HardState.Commit saved
	snaps     int
	// failAt makes the failAt-th Save (1-based) return err.
	failAt int
	err    error
	// gated: each Save sends on entered, then waits on release.
	gated   bool
	entered chan struct{}
	release chan struct{}
	// violations are contract breaches seen by the persister.
	violations []string
	// block, when set, holds every Save until it is closed (a stalled disk).
	block chan struct{}
	// delay makes every Save take at least this long (an fsync).
	delay time.Duration
}

func newFakePersister() *fakePersister {
	return &fakePersister{saved: map[uint64]uint64{}, entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (p *fakePersister) Save(st raftpb.HardState, ents []raftpb.Entry) error {
	p.mu.Lock()
	p.saves++
	n, gated, block, delay := p.saves, p.gated, p.block, p.delay
	p.mu.Unlock()
	if block != nil {
		<-block
	}
	time.Sleep(delay)
	if gated {
		p.entered <- struct{}{}
		<-p.release
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n == p.failAt {
		return p.err
	}
	for _, e := range ents {
		// Entries may be overwritten by a new leader, but never with a gap.
		if e.Index > p.lastIndex+1 {
			p.violations = append(p.violations, fmt.Sprintf("gap: saved %d after %d", e.Index, p.lastIndex))
		}
		p.saved[e.Index] = e.Term
		p.lastIndex = e.Index
	}
	if !raft.IsEmptyHardState(st) {
		if st.Commit < p.commit {
			p.violations = append(p.violations, fmt.Sprintf("commit went back from %d to %d", p.commit, st.Commit))
		}
		p.commit = st.Commit
	}
	return nil
}

func (p *fakePersister) SaveSnapshot(raftpb.Snapshot) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.snaps++
	return nil
}

func (p *fakePersister) isSaved(i uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.saved[i] != 0
}

// holds reports whether the entry e itself (its index with its term) is
// durable; an older entry at the same index does not count.
func (p *fakePersister) holds(e raftpb.Entry) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.saved[e.Index] == e.Term
}

func (p *fakePersister) setGated(g bool) {
	p.mu.Lock()
	p.gated = g
	p.mu.Unlock()
}

type harness struct {
	// bootstrapNeedsPersist is NeedsPersist of the batch holding entry 1.
	bootstrapNeedsPersist bool
	n                     *Node
	p                     *fakePersister
	leader                chan uint64
	fatalMu               sync.Mutex
	fatals                []error
	commits               []uint64
}

// start runs a single-voter raft node (ID 1) under a Node and makes it
// campaign. The caller consumes Apply.
func start(t *testing.T, p *fakePersister) *harness {
	t.Helper()
	return startWith(t, p, nil)
}

// startWith is start with a hook that may change the Node's config.
func startWith(t *testing.T, p *fakePersister, edit func(*Config)) *harness {
	t.Helper()
	ms := raft.NewMemoryStorage()
	rn, err := raft.NewRawNode(&raft.Config{
		ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: ms,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, MaxUncommittedEntriesSize: 1 << 30,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rn.Bootstrap([]raft.Peer{{ID: 1}}); err != nil {
		t.Fatal(err)
	}
	h := &harness{p: p, leader: make(chan uint64, 16)}
	cfg := Config{
		Logger:         zap.NewNop(),
		Raft:           rn,
		Storage:        ms,
		Persister:      p,
		TickInterval:   time.Millisecond,
		OnLeaderChange: func(lead, _ uint64) { h.leader <- lead },
		OnCommitted: func(c uint64) {
			h.fatalMu.Lock()
			h.commits = append(h.commits, c)
			h.fatalMu.Unlock()
		},
		OnFatal: func(err error) {
			h.fatalMu.Lock()
			h.fatals = append(h.fatals, err)
			h.fatalMu.Unlock()
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	h.n = New(cfg)
	h.n.Start()
	t.Cleanup(h.n.Stop)
	if err := h.n.Campaign(); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) fatalErrs() []error {
	h.fatalMu.Lock()
	defer h.fatalMu.Unlock()
	return append([]error(nil), h.fatals...)
}

// awaitLeader consumes Apply batches until this node leads and the
// bootstrap batch has been seen.
func (h *harness) awaitLeader(t *testing.T) {
	t.Helper()
	deadline := time.After(wait)
	led, boot := false, false
	for !led || !boot {
		select {
		case lead := <-h.leader:
			if lead == 1 {
				if !h.n.IsLeader() || h.n.Leader() != 1 || h.n.Term() == 0 {
					t.Fatalf("leader %d, is leader %v, term %d", h.n.Leader(), h.n.IsLeader(), h.n.Term())
				}
				led = true
			}
		case ap := <-h.n.Apply():
			checkBatch(t, h.p, ap)
			if len(ap.Entries) > 0 && ap.Entries[0].Index == 1 {
				h.bootstrapNeedsPersist = ap.NeedsPersist()
				boot = true
			}
			select {
			case <-ap.Persisted:
			case <-deadline:
				t.Fatal("bootstrap batch never persisted")
			}
		case <-deadline:
			t.Fatalf("leader %v, bootstrap batch %v", led, boot)
		}
	}
}

// checkBatch checks a batch as the applier receives it: unless it says it
// needs persisting, every entry in it is already durable locally.
func checkBatch(t *testing.T, p *fakePersister, ap Apply) {
	t.Helper()
	if !ap.NeedsPersist() {
		for _, e := range ap.Entries {
			if !p.holds(e) {
				t.Fatalf("entry %d (term %d) handed to apply before it was saved, NeedsPersist false", e.Index, e.Term)
			}
		}
	}
}

// barrier returns once the loop has handled everything queued before it.
func (h *harness) barrier() error { return h.n.do(func() {}) }

// TestEntriesPersistedBeforeApply: every proposed entry is durable before
// the applier receives it as committed, every batch is durable once its
// Persisted closes, and entries arrive once each, in log order. The
// bootstrap entry, committed by fiat in the Ready that appends it, is the
// one batch that must say NeedsPersist.
func TestEntriesPersistedBeforeApply(t *testing.T) {
	p := newFakePersister()
	h := start(t, p)
	h.awaitLeader(t)
	if !h.bootstrapNeedsPersist {
		t.Fatal("the bootstrap batch (committed before it is saved) does not say NeedsPersist")
	}
	const n = 200
	go func() {
		for i := range n {
			h.n.Propose(nil, uint64(i), fmt.Appendf(nil, "p%d", i))
			if i%7 == 0 && h.barrier() != nil {
				return
			}
		}
	}()
	deadline := time.After(wait)
	var last uint64
	seen := 0
	for seen < n {
		select {
		case ap, ok := <-h.n.Apply():
			if !ok {
				t.Fatal("apply channel closed")
			}
			checkBatch(t, p, ap)
			for _, e := range ap.Entries {
				if last != 0 && e.Index != last+1 {
					t.Fatalf("entry %d after %d", e.Index, last)
				}
				last = e.Index
				if len(e.Data) > 0 && e.Type == raftpb.EntryNormal {
					seen++
					// A leader's proposals commit only after its own
					// durable append (self-ack on Advance).
					if !p.isSaved(e.Index) {
						t.Fatalf("entry %d handed to apply before it was saved", e.Index)
					}
				}
			}
			select {
			case <-ap.Persisted:
			case <-deadline:
				t.Fatal("Persisted never closed")
			}
			for _, e := range ap.Entries {
				if !p.isSaved(e.Index) {
					t.Fatalf("Persisted closed but entry %d is not saved", e.Index)
				}
			}
		case <-deadline:
			t.Fatalf("applied %d of %d proposals", seen, n)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.violations) > 0 {
		t.Fatal(p.violations)
	}
	h.fatalMu.Lock()
	defer h.fatalMu.Unlock()
	for i := 1; i < len(h.commits); i++ {
		if h.commits[i] < h.commits[i-1] {
			t.Fatalf("OnCommitted went back: %v", h.commits)
		}
	}
	if len(h.fatals) > 0 {
		t.Fatal(h.fatals)
	}
}

// TestPersistedClosesOnlyAfterSave holds the Save of the Ready that carries
// a committed entry and checks that its Persisted stays open until the Save
// returns.
func TestPersistedClosesOnlyAfterSave(t *testing.T) {
	p := newFakePersister()
	h := start(t, p)
	h.awaitLeader(t)
	p.setGated(true)
	defer func() {
		// Let any Save still held go, so Stop can return.
		p.setGated(false)
		close(p.release)
	}()
	h.n.Propose(nil, 1, []byte("x"))
	deadline := time.After(wait)
	// Release Saves until the batch with "x" arrives. The loop queues a
	// batch before it saves its Ready, so when a Save is entered every batch
	// of that Ready is already in the Apply buffer: draining it first tells
	// whether this Save is the one of x's Ready (then held, not released).
	var ap Apply
	take := func(a Apply) {
		for _, e := range a.Entries {
			if string(e.Data) == "x" {
				ap = a
			}
		}
		if ap.Entries == nil {
			go drain(a)
		}
	}
	held := false
	for !held {
		select {
		case <-p.entered:
			for drained := false; !drained; {
				select {
				case a := <-h.n.Apply():
					take(a)
				default:
					drained = true
				}
			}
			if ap.Entries != nil {
				held = true
			} else {
				p.release <- struct{}{}
			}
		case a := <-h.n.Apply():
			take(a)
		case <-deadline:
			t.Fatal("entry x never committed and saved")
		}
	}
	select {
	case <-ap.Persisted:
		t.Fatal("Persisted closed while its Save is still running")
	default:
	}
	p.setGated(false)
	p.release <- struct{}{}
	select {
	case <-ap.Persisted:
	case <-deadline:
		t.Fatal("Persisted not closed after Save returned")
	}
}

func drain(a Apply) { <-a.Persisted }

// TestSaveErrorIsFatal: a failing Save is reported once through OnFatal,
// the loop stops (no Save after it, Apply and Done closed, raft stopped),
// the failed Ready is never reported as persisted, and Stop still returns.
func TestSaveErrorIsFatal(t *testing.T) {
	p := newFakePersister()
	h := start(t, p)
	h.awaitLeader(t)
	injected := errors.New("disk gone")
	p.mu.Lock()
	p.failAt = p.saves + 1
	p.err = injected
	failAt := p.failAt
	p.mu.Unlock()
	go func() {
		for i := 0; i < 10; i++ {
			h.n.Propose(nil, uint64(i), []byte("y"))
			if h.barrier() != nil {
				return
			}
		}
	}()
	var pending []Apply
	deadline := time.After(wait)
	for open := true; open; {
		select {
		case ap, ok := <-h.n.Apply():
			if !ok {
				open = false
				break
			}
			pending = append(pending, ap)
		case <-deadline:
			t.Fatal("Apply channel not closed after a failed Save")
		}
	}
	select {
	case <-h.n.Done():
	case <-deadline:
		t.Fatal("loop did not stop")
	}
	errs := h.fatalErrs()
	if len(errs) != 1 || !errors.Is(errs[0], injected) {
		t.Fatalf("OnFatal calls: %v, want one wrapping %v", errs, injected)
	}
	p.mu.Lock()
	saves := p.saves
	p.mu.Unlock()
	if saves != failAt {
		t.Fatalf("%d Saves, the failing one was #%d", saves, failAt)
	}
	// The batch queued by the failing Ready (if any) must not claim
	// durability; earlier ones are persisted.
	for i, ap := range pending {
		select {
		case <-ap.Persisted:
			if i == len(pending)-1 && !allSaved(p, ap) {
				t.Fatal("Persisted closed for a Ready whose Save failed")
			}
		default:
			if i != len(pending)-1 {
				t.Fatalf("batch %d of %d never persisted", i, len(pending))
			}
		}
	}
	if err := h.barrier(); !errors.Is(err, ErrStopped) {
		t.Fatalf("loop still running: request = %v", err)
	}
	stopped := make(chan struct{})
	go func() { h.n.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(wait):
		t.Fatal("Stop hangs after a fatal error")
	}
}

func allSaved(p *fakePersister, ap Apply) bool {
	for _, e := range ap.Entries {
		if !p.isSaved(e.Index) {
			return false
		}
	}
	return true
}

// TestStopWhileApplierIsBehind: Stop returns even when nobody consumes
// Apply and the loop is blocked handing over a batch; it does not count
// as a fatal error, and Stop may be called again.
func TestStopWhileApplierIsBehind(t *testing.T) {
	p := newFakePersister()
	h := start(t, p)
	// Nobody reads Apply from here on: the 64-slot buffer fills.
	// One Ready per proposal: the loop serves the barrier only between
	// Readys or while blocked handing a batch over.
	for i := 0; i < 2*cap(h.n.applyc)+8; i++ {
		h.n.Propose(nil, uint64(i), []byte("w"))
		if err := h.barrier(); err != nil {
			t.Fatal(err)
		}
	}
	stopped := make(chan struct{})
	go func() { h.n.Stop(); h.n.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(wait):
		t.Fatal("Stop hangs while the applier is behind")
	}
	select {
	case <-h.n.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	// The channel is closed after what was queued.
	for range h.n.Apply() {
	}
	if errs := h.fatalErrs(); len(errs) != 0 {
		t.Fatalf("Stop reported as fatal: %v", errs)
	}
	if err := h.barrier(); !errors.Is(err, ErrStopped) {
		t.Fatalf("loop still running: request = %v", err)
	}
}

// TestRestartedLogNeedsNoPersist: after a restart, the committed entries
// raft's storage already holds (read from the WAL) are applied without
// waiting for any Save.
func TestRestartedLogNeedsNoPersist(t *testing.T) {
	ms := raft.NewMemoryStorage()
	ents := []raftpb.Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1, Data: []byte("a")}, {Index: 3, Term: 1, Data: []byte("b")}}
	if err := ms.Append(ents); err != nil {
		t.Fatal(err)
	}
	if err := ms.SetHardState(raftpb.HardState{Term: 1, Commit: 3}); err != nil {
		t.Fatal(err)
	}
	rn, err := raft.NewRawNode(&raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: ms, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256})
	if err != nil {
		t.Fatal(err)
	}
	p := newFakePersister()
	n := New(Config{Logger: zap.NewNop(), Raft: rn, Storage: ms, Persister: p, TickInterval: time.Hour})
	n.Start()
	defer n.Stop()
	select {
	case ap := <-n.Apply():
		if len(ap.Entries) != 3 || ap.NeedsPersist() {
			t.Fatalf("%d entries, NeedsPersist %v; want 3, false", len(ap.Entries), ap.NeedsPersist())
		}
	case <-time.After(wait):
		t.Fatal("no batch")
	}
}
