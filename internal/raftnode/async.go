package raftnode

import (
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/internal/failpoint"
)

// Asynchronous storage writes (Config.AsyncStorageWrites, raft's
// AsyncStorageWrites): the loop never waits for the disk. Each Ready's log
// append (entries, hard state, snapshot) is a MsgStorageAppend that the loop
// queues for the append goroutine; the loop goes on ticking, stepping peer
// messages and proposals and sending what raft emits, so heartbeats, vote
// answers and read-index rounds keep flowing while a write (the leader's own
// fsync above all) is in progress.
//
// The append goroutine takes every queued append at once and makes them
// durable with one WAL Save (a snapshot among them is saved in its place in
// the order), then updates the in-memory raft storage message by message,
// hands an incoming snapshot to the applier, and only then delivers each
// message's responses: raft's own acknowledgements (MsgStorageAppendResp, a
// leader's self-addressed MsgAppResp) go back to the loop in order, answers
// to peers (a follower's MsgAppResp, vote answers) to the transport. So an
// answer that promises durability is sent only once the promise holds.
//
// Committed entries: raft hands them out (MsgStorageApply) only once they are
// durable locally, so the applier never gets ahead of the local WAL and
// Apply.NeedsPersist is always false. The loop queues them for the applier and
// steps the MsgStorageApplyResp at once, as Advance does in the synchronous
// mode.

// msgQueue is an unbounded FIFO of messages between two goroutines: adding
// never blocks, and take returns everything queued. Raft's flow control
// (in-flight and uncommitted-size limits) bounds what accumulates.
type msgQueue struct {
	mu   sync.Mutex
	msgs []raftpb.Message
	wake chan struct{} // capacity 1: "msgs became non-empty"
}

func newMsgQueue() *msgQueue { return &msgQueue{wake: make(chan struct{}, 1)} }

func (q *msgQueue) add(ms ...raftpb.Message) {
	if len(ms) == 0 {
		return
	}
	q.mu.Lock()
	first := len(q.msgs) == 0
	q.msgs = append(q.msgs, ms...)
	q.mu.Unlock()
	if first {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

func (q *msgQueue) take() []raftpb.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	ms := q.msgs
	q.msgs = nil
	return ms
}

// closedPersisted is the Persisted channel of asynchronous-mode batches:
// their entries are durable before the batch exists.
var closedPersisted = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// handleAsync handles a Ready of a RawNode in asynchronous storage mode.
// Loop goroutine.
func (n *Node) handleAsync(rd raft.Ready) error {
	n.publish(rd)
	var remote []raftpb.Message
	for _, m := range rd.Messages {
		switch m.To {
		case raft.LocalAppendThread:
			n.noteAppend(&m)
			n.appends.add(m)
		case raft.LocalApplyThread:
			if len(m.Entries) > 0 {
				if err := n.handOut(Apply{Entries: m.Entries, Persisted: closedPersisted}); err != nil {
					return err
				}
			}
			for _, r := range m.Responses {
				n.stepLocal(r)
			}
		default:
			remote = append(remote, m)
		}
	}
	n.send(remote)
	return nil
}

// stepLocal steps a response addressed to this node by its own storage.
func (n *Node) stepLocal(m raftpb.Message) {
	if err := n.rn.Step(m); err != nil {
		n.cfg.Logger.Debug("raft refused a local storage response")
	}
}

// stepLocalResponses steps the responses the append goroutine has delivered
// since the last call, in order. Loop goroutine.
func (n *Node) stepLocalResponses() {
	for _, m := range n.local.take() {
		n.stepLocal(m)
	}
}

// appendLoop is the append goroutine. It ends when stopAppend closes or a
// write fails (the error goes to the loop, which stops the node).
func (n *Node) appendLoop() {
	defer close(n.appendDone)
	for {
		select {
		case <-n.appends.wake:
		case <-n.stopAppend:
			return
		}
		if err := n.persistAppends(n.appends.take()); err != nil {
			if !errors.Is(err, ErrStopped) {
				n.appendErr <- err
			}
			return
		}
	}
}

// persistAppends makes a run of MsgStorageAppend durable, updates the raft
// storage and delivers their responses. Append goroutine.
func (n *Node) persistAppends(batch []raftpb.Message) error {
	if len(batch) == 0 {
		return nil
	}
	var (
		st   raftpb.HardState
		ents []raftpb.Entry
	)
	save := func() error {
		if err := n.cfg.Persister.Save(st, ents); err != nil {
			return fmt.Errorf("save wal: %w", err)
		}
		if len(ents) > 0 {
			// Durable in the WAL, not yet in raft's memory log nor
			// answered: the synchronous loop's crash point, here too.
			failpoint.Crash(failpoint.WALAfterFsync) // test builds only
		}
		st, ents = raftpb.HardState{}, nil
		return nil
	}
	// 1. The WAL: entries and the newest hard state of consecutive appends
	// in one Save; a snapshot after everything before it.
	for i := range batch {
		m := &batch[i]
		if m.Snapshot != nil && !raft.IsEmptySnap(*m.Snapshot) {
			if err := save(); err != nil {
				return err
			}
			if err := n.cfg.Persister.SaveSnapshot(*m.Snapshot); err != nil {
				return fmt.Errorf("save snapshot: %w", err)
			}
		}
		ents = append(ents, m.Entries...)
		if hs := (raftpb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}); !raft.IsEmptyHardState(hs) {
			st = hs
		}
	}
	if err := save(); err != nil {
		return err
	}
	// 2. The raft storage, in order: it holds only what the WAL holds.
	for i := range batch {
		m := &batch[i]
		if m.Snapshot != nil && !raft.IsEmptySnap(*m.Snapshot) {
			if err := n.cfg.Storage.ApplySnapshot(*m.Snapshot); err != nil {
				return fmt.Errorf("apply snapshot to raft storage: %w", err)
			}
			// The applier installs it before any entry that follows it:
			// raft releases those only after the response below.
			if err := n.queueApplyFromAppend(Apply{Snapshot: *m.Snapshot, Persisted: closedPersisted}); err != nil {
				return err
			}
		}
		if hs := (raftpb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}); !raft.IsEmptyHardState(hs) {
			if err := n.cfg.Storage.SetHardState(hs); err != nil {
				return fmt.Errorf("set hard state: %w", err)
			}
		}
		if err := n.cfg.Storage.Append(m.Entries); err != nil {
			return fmt.Errorf("append to raft storage: %w", err)
		}
	}
	// 3. The responses, in order.
	var remote []raftpb.Message
	for i := range batch {
		for _, r := range batch[i].Responses {
			if r.To == n.id {
				n.local.add(r)
			} else {
				remote = append(remote, r)
			}
		}
	}
	n.send(remote)
	return nil
}

// queueApplyFromAppend hands a batch to the applier from the append
// goroutine; ErrStopped once the node stops.
func (n *Node) queueApplyFromAppend(ap Apply) error {
	if n.cfg.ApplyInline != nil {
		n.handedOut.Add(1) // the applier reports it done like any other
	}
	select {
	case n.applyc <- ap:
		return nil
	case <-n.stopAppend:
		return ErrStopped
	}
}
