package raftnode

import (
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// testNet connects Nodes in one process. Messages go straight into the
// target's intake; a cut link drops them, as a partition would.
type testNet struct {
	mu    sync.Mutex
	nodes map[uint64]*Node
	cut   map[[2]uint64]bool // {from, to}
	// observe, when set, sees every message delivered (under mu).
	observe func(from uint64, m raftpb.Message)
}

func (nw *testNet) setLink(from, to uint64, up bool) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if up {
		delete(nw.cut, [2]uint64{from, to})
	} else {
		nw.cut[[2]uint64{from, to}] = true
	}
}

// setBoth cuts or heals the links between a and every one of others, both ways.
func (nw *testNet) setBoth(a uint64, others []uint64, up bool) {
	for _, o := range others {
		nw.setLink(a, o, up)
		nw.setLink(o, a, up)
	}
}

type netTransport struct {
	nw   *testNet
	from uint64
}

func (tr netTransport) Send(msgs []raftpb.Message) {
	tr.nw.mu.Lock()
	defer tr.nw.mu.Unlock()
	for _, m := range msgs {
		to := tr.nw.nodes[m.To]
		if to == nil || tr.nw.cut[[2]uint64{tr.from, m.To}] {
			continue
		}
		if tr.nw.observe != nil {
			tr.nw.observe(tr.from, m)
		}
		select {
		case to.recvc <- m:
		default: // a full intake drops, as a congested stream would
		}
	}
}

// voter is one member of a test cluster with the applier's side of the
// contract checked: a batch that does not say NeedsPersist must hold only
// entries (index and term) already durable locally.
type voter struct {
	id      uint64
	n       *Node
	p       *fakePersister
	applied atomic.Uint64

	mu         sync.Mutex
	violations []string
	// log is what the applier received: index → term.
	log map[uint64]uint64
	// data is what the applier received of each normal entry: index → data.
	data map[uint64]string
	// reads receives the node's read states.
	reads chan raft.ReadState
	// fatal receives what the node reports to OnFatal.
	fatal chan error
}

func (v *voter) check(ap Apply) {
	if !ap.NeedsPersist() {
		for _, e := range ap.Entries {
			if !v.p.holds(e) {
				v.mu.Lock()
				v.violations = append(v.violations, fmt.Sprintf("member %d: entry %d (term %d) handed to apply as durable while the WAL holds another term there", v.id, e.Index, e.Term))
				v.mu.Unlock()
			}
		}
	}
	v.mu.Lock()
	for _, e := range ap.Entries {
		if _, dup := v.log[e.Index]; dup {
			v.violations = append(v.violations, fmt.Sprintf("member %d: entry %d applied twice", v.id, e.Index))
		}
		v.log[e.Index] = e.Term
		if e.Type == raftpb.EntryNormal && len(e.Data) > 0 {
			v.data[e.Index] = string(e.Data)
		}
	}
	v.mu.Unlock()
	if len(ap.Entries) > 0 {
		v.applied.Store(ap.Entries[len(ap.Entries)-1].Index)
	}
}

func (v *voter) errs() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.violations)
}

// newCluster starts n voters (IDs 1..n) that share a configuration from a
// snapshot at index 1. Elections never start on their own (the election
// timeout is hours of ticks); tests call Campaign. Heartbeats run every
// tick so a leader keeps probing followers whose messages were lost.
// Voters in gated have every Save held until the voter's checker has seen
// every batch queued before it, so the check runs while the Ready that
// queued a batch is still unsaved.
func newCluster(t *testing.T, n int, gated ...uint64) (*testNet, map[uint64]*voter) {
	t.Helper()
	return newClusterMode(t, n, false, gated...)
}

// clusterTick is the tick of test cluster nodes; a test that must not see
// heartbeats sets it for its own cluster (tests here do not run in parallel).
var clusterTick = 2 * time.Millisecond

// clusterConfigure, when set, adjusts each test cluster node's raft and
// raftnode configuration before it is created (tests here do not run in
// parallel).
var clusterConfigure func(id uint64, rc *raft.Config, nc *Config)

// newClusterMode is newCluster with the storage mode chosen: async runs
// the nodes with raft's AsynchronousStorageWrites (async.go).
func newClusterMode(t *testing.T, n int, async bool, gated ...uint64) (*testNet, map[uint64]*voter) {
	t.Helper()
	nw := &testNet{nodes: map[uint64]*Node{}, cut: map[[2]uint64]bool{}}
	voters := map[uint64]*voter{}
	var ids []uint64
	for i := 1; i <= n; i++ {
		ids = append(ids, uint64(i))
	}
	for _, id := range ids {
		ms := raft.NewMemoryStorage()
		if err := ms.ApplySnapshot(raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 1, Term: 1, ConfState: raftpb.ConfState{Voters: ids}}}); err != nil {
			t.Fatal(err)
		}
		rc := &raft.Config{
			ID: id, ElectionTick: 1 << 30, HeartbeatTick: 1, Storage: ms,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, MaxUncommittedEntriesSize: 1 << 30,
			Logger:             &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)},
			AsyncStorageWrites: async,
		}
		v := &voter{id: id, p: newFakePersister(), log: map[uint64]uint64{}, data: map[uint64]string{}, reads: make(chan raft.ReadState, 16),
			fatal: make(chan error, 1)}
		v.p.gated = slices.Contains(gated, id)
		nc := Config{
			Logger: zap.NewNop(), Storage: ms, Persister: v.p,
			Transport: netTransport{nw: nw, from: id}, TickInterval: clusterTick,
			AsyncStorageWrites: async,
			OnFatal:            func(err error) { v.fatal <- err },
			OnReadStates: func(rs []raft.ReadState) {
				for _, r := range rs {
					select {
					case v.reads <- r:
					default:
					}
				}
			},
		}
		if clusterConfigure != nil {
			clusterConfigure(id, rc, &nc)
		}
		rn, err := raft.NewRawNode(rc)
		if err != nil {
			t.Fatal(err)
		}
		nc.Raft = rn
		v.n = New(nc)
		voters[id] = v
		nw.nodes[id] = v.n
	}
	for _, v := range voters {
		v.n.Start()
		go v.apply()
	}
	t.Cleanup(func() {
		// A held Save is released by the voter's applier, which runs
		// until its node is done.
		for _, v := range voters {
			v.p.setGated(false)
			v.p.mu.Lock()
			if v.p.block != nil {
				select {
				case <-v.p.block:
				default:
					close(v.p.block)
				}
			}
			v.p.mu.Unlock()
		}
		for _, v := range voters {
			v.n.Stop()
		}
	})
	return nw, voters
}

// apply is the voter's applier. For a gated voter a Save waits until every
// batch queued before it (they sit in the Apply buffer) has been checked.
func (v *voter) apply() {
	for {
		select {
		case ap, ok := <-v.n.Apply():
			if !ok {
				return
			}
			v.check(ap)
		case <-v.p.entered:
			for drained := false; !drained; {
				select {
				case ap, ok := <-v.n.Apply():
					if !ok {
						return
					}
					v.check(ap)
				default:
					drained = true
				}
			}
			select {
			case v.p.release <- struct{}{}:
			case <-v.n.Done():
				return
			}
		}
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func leaderIs(vs map[uint64]*voter, lead uint64, among ...uint64) func() bool {
	return func() bool {
		for _, id := range among {
			if vs[id].n.Leader() != lead {
				return false
			}
		}
		return true
	}
}

func appliedAtLeast(vs map[uint64]*voter, index uint64, among ...uint64) func() bool {
	return func() bool {
		for _, id := range among {
			if vs[id].applied.Load() < index {
				return false
			}
		}
		return true
	}
}

// TestFollowerWaitsForOverwrittenTail builds the case where the highest
// index a follower ever persisted says nothing: a new leader overwrites the
// follower's uncommitted tail and, in the same message, tells it the new
// entries are committed. Those entries are not on the follower's disk (the
// WAL holds the old leader's entries at those indexes), so the applier must
// be told to wait for the Save of that Ready.
func TestFollowerWaitsForOverwrittenTail(t *testing.T) {
	bothModes(t, testFollowerWaitsForOverwrittenTail)
}

// bothModes runs a multi-voter test with synchronous and with asynchronous
// storage writes.
func bothModes(t *testing.T, test func(t *testing.T, async bool)) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) { test(t, async) })
	}
}

func testFollowerWaitsForOverwrittenTail(t *testing.T, async bool) {
	const a, b, c, d, e = 1, 2, 3, 4, 5
	nw, vs := newClusterMode(t, 5, async, b)
	all := []uint64{a, b, c, d, e}

	// a leads; everyone applies its empty entry (index 2).
	if err := vs[a].n.Campaign(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a to lead", leaderIs(vs, a, all...))
	eventually(t, "a's first entry applied everywhere", appliedAtLeast(vs, 2, all...))
	aTerm := vs[a].n.Term()

	// a replicates six entries to b only, and never hears b's answer:
	// they are durable on b but not committed.
	nw.setLink(b, a, false)
	for _, o := range []uint64{c, d, e} {
		nw.setLink(a, o, false)
	}
	// Queued from the loop goroutine, so they reach raft as one batch.
	if err := vs[a].n.do(func() {
		for i := 0; i < 6; i++ {
			vs[a].n.Propose(nil, uint64(i), fmt.Appendf(nil, "old%d", i))
		}
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b to persist a's uncommitted tail", func() bool {
		return vs[b].p.holds(raftpb.Entry{Index: 8, Term: aTerm})
	})

	// a and b are cut off; c leads a later term with d and e and commits
	// new entries at indexes 3..5.
	nw.setBoth(a, []uint64{b, c, d, e}, false)
	nw.setBoth(b, []uint64{c, d, e}, false)
	if err := vs[c].n.Campaign(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "c to lead", leaderIs(vs, c, c, d, e))
	cTerm := vs[c].n.Term()
	if cTerm <= aTerm {
		t.Fatalf("c leads term %d, a led term %d", cTerm, aTerm)
	}
	for i := 0; i < 2; i++ {
		vs[c].n.Propose(nil, uint64(i), fmt.Appendf(nil, "new%d", i))
	}
	eventually(t, "c's entries committed and applied on c, d, e", appliedAtLeast(vs, 5, c, d, e))

	// b rejoins c: its entries from a's term at 3..8 are replaced by c's at
	// 3..5, committed in the same append.
	nw.setBoth(b, []uint64{c}, true)
	eventually(t, "b to apply c's entries", appliedAtLeast(vs, 5, b))
	// The applier sees a batch before the Save of its Ready completes (b's
	// Saves are gated on it), so the WAL is checked once that Save is done.
	eventually(t, "b's WAL to hold c's entries 3..5", func() bool {
		for i := uint64(3); i <= 5; i++ {
			if !vs[b].p.holds(raftpb.Entry{Index: i, Term: cTerm}) {
				return false
			}
		}
		return true
	})
	for _, v := range vs {
		if errs := v.errs(); len(errs) > 0 {
			t.Fatal(errs)
		}
	}
}

// TestVotersUnderPartitionsAndLeaderChanges runs three voters through random
// partitions and elections, every Save checked as in the test above, and
// then checks that they applied the same entries (state machine safety).
func TestVotersUnderPartitionsAndLeaderChanges(t *testing.T) {
	bothModes(t, testVotersUnderPartitionsAndLeaderChanges)
}

func testVotersUnderPartitionsAndLeaderChanges(t *testing.T, async bool) {
	ids := []uint64{1, 2, 3}
	nw, vs := newClusterMode(t, 3, async, ids...)
	rng := rand.New(rand.NewPCG(7, 11))
	token := uint64(0)
	for round := 0; round < 40; round++ {
		for _, from := range ids {
			for _, to := range ids {
				if from != to {
					nw.setLink(from, to, rng.IntN(4) != 0)
				}
			}
		}
		if err := vs[ids[rng.IntN(3)]].n.Campaign(); err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			for i := rng.IntN(4); i > 0; i-- {
				token++
				v.n.Propose(nil, token, fmt.Appendf(nil, "r%d", round))
			}
		}
		// Let the round's messages flow before the next partition.
		for _, v := range vs {
			if err := v.n.do(func() {}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, from := range ids {
		nw.setBoth(from, ids, true)
	}
	// Only a member with a log at least as long as a majority's can win.
	var lead uint64
	calls := 0
	eventually(t, "a leader of the healed cluster", func() bool {
		if l := vs[1].n.Leader(); l != raft.None && leaderIs(vs, l, ids...)() {
			lead = l
			return true
		}
		if calls++; calls%50 == 1 {
			_ = vs[ids[(calls/50)%3]].n.Campaign()
		}
		return false
	})
	if term := vs[lead].n.Term(); term < 10 {
		t.Fatalf("term %d after 40 rounds of elections: the partitions did not exercise leader changes", term)
	}
	vs[lead].n.Propose(nil, token+1, []byte("last"))
	var last uint64
	eventually(t, "the last entry applied everywhere", func() bool {
		vs[lead].mu.Lock()
		for i, term := range vs[lead].log {
			if term == vs[lead].n.Term() && i > last {
				last = i
			}
		}
		vs[lead].mu.Unlock()
		return last > 2 && appliedAtLeast(vs, last, ids...)()
	})
	for _, v := range vs {
		if errs := v.errs(); len(errs) > 0 {
			t.Fatal(errs)
		}
	}
	for i := uint64(2); i <= last; i++ {
		vs[1].mu.Lock()
		want := vs[1].log[i]
		vs[1].mu.Unlock()
		for _, id := range ids[1:] {
			vs[id].mu.Lock()
			got, ok := vs[id].log[i]
			vs[id].mu.Unlock()
			if !ok || got != want {
				t.Fatalf("entry %d: member 1 applied term %d, member %d term %d (applied %v)", i, want, id, got, ok)
			}
		}
	}
}

// TestLoopRunsDuringLeaderSave: with asynchronous storage writes the
// leader's loop does not wait for its own disk. While every Save of the
// leader is held (a stalled fsync), the loop answers requests, completes a
// read-index round, and keeps replicating: entries proposed meanwhile are
// committed by the followers' acknowledgements and applied on the
// followers. The leader itself applies them only once its Save returns
// (nothing is applied before it is durable locally).
func TestLoopRunsDuringLeaderSave(t *testing.T) {
	const a, b, c = 1, 2, 3
	_, vs := newClusterMode(t, 3, true)
	all := []uint64{a, b, c}
	if err := vs[a].n.Campaign(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a to lead", leaderIs(vs, a, all...))
	eventually(t, "a's first entry applied everywhere", appliedAtLeast(vs, 2, all...))

	block := make(chan struct{})
	vs[a].p.mu.Lock()
	vs[a].p.block = block
	vs[a].p.mu.Unlock()
	for i := 0; i < 3; i++ {
		vs[a].n.Propose(nil, uint64(i), fmt.Appendf(nil, "stalled%d", i))
	}
	eventually(t, "the followers to apply entries the leader has not persisted", appliedAtLeast(vs, 5, b, c))

	done := make(chan error, 1)
	go func() { _, err := vs[a].n.Status(); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("the leader's loop did not answer while its Save was held")
	}
	if err := vs[a].n.ReadIndex([]byte("r")); err != nil {
		t.Fatal(err)
	}
	select {
	case rs := <-vs[a].reads:
		if string(rs.RequestCtx) != "r" || rs.Index < 5 {
			t.Fatalf("read state %q at %d, want r at >= 5", rs.RequestCtx, rs.Index)
		}
	case <-time.After(wait):
		t.Fatal("no read state while the leader's Save was held")
	}
	if got := vs[a].applied.Load(); got >= 3 {
		t.Fatalf("the leader applied up to %d before its own Save of those entries returned", got)
	}
	vs[a].p.mu.Lock()
	close(block)
	vs[a].p.mu.Unlock()
	eventually(t, "the leader to apply once its disk is back", appliedAtLeast(vs, 5, a))
	for _, v := range vs {
		if errs := v.errs(); len(errs) > 0 {
			t.Fatal(errs)
		}
	}
}

// TestAsyncSaveErrorIsFatal: a failed write on the append goroutine stops
// the node through OnFatal, and nothing of the failed Save is applied.
func TestAsyncSaveErrorIsFatal(t *testing.T) {
	const a, b, c = 1, 2, 3
	_, vs := newClusterMode(t, 3, true)
	if err := vs[a].n.Campaign(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a to lead", leaderIs(vs, a, a, b, c))
	eventually(t, "a's first entry applied everywhere", appliedAtLeast(vs, 2, a, b, c))
	applied := vs[b].applied.Load()
	vs[b].p.mu.Lock()
	vs[b].p.failAt, vs[b].p.err = vs[b].p.saves+1, errors.New("disk on fire")
	vs[b].p.mu.Unlock()
	vs[a].n.Propose(nil, 1, []byte("x"))
	select {
	case err := <-vs[b].fatal:
		if !errors.Is(err, vs[b].p.err) {
			t.Fatalf("fatal %v, want the Save error", err)
		}
	case <-time.After(wait):
		t.Fatal("a failed Save did not stop the node")
	}
	select {
	case <-vs[b].n.Done():
	case <-time.After(wait):
		t.Fatal("the node did not stop after a failed Save")
	}
	if got := vs[b].applied.Load(); got != applied {
		t.Fatalf("applied %d after the failed Save, was %d", got, applied)
	}
}
