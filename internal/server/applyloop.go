package server

import (
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/apply"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/raftnode"
)

// raftConfState holds the raft configuration as of the last applied entry.
type raftConfState struct {
	mu sync.Mutex
	cs raftpb.ConfState
}

func (r *raftConfState) set(cs raftpb.ConfState) {
	r.mu.Lock()
	r.cs = cs
	r.mu.Unlock()
}

func (r *raftConfState) get() raftpb.ConfState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cs
}

// applyResult is what a proposer receives.
type applyResult struct {
	resp     any
	err      error
	physical <-chan struct{}
}

// applyLoop is the main writer of the state machine: it applies committed
// entries strictly in log order, wakes their proposers, and takes raft
// snapshots every SnapshotCount entries. The raft loop applies some small
// batches itself (applyInline); s.applyMu makes the two take turns, so
// "the apply goroutine" below means whichever holds applyMu.
func (s *Server) applyLoop() {
	for {
		select {
		case ap, ok := <-s.node.Apply():
			if !ok {
				return
			}
			s.applyMu.Lock()
			err := s.applyBatch(ap)
			s.applyMu.Unlock()
			s.node.ApplyDone()
			if err != nil {
				if !errors.Is(err, ErrStopped) {
					s.fatal(err)
				}
				return
			}
		case m := <-s.snapc:
			s.applyMu.Lock()
			s.sendSnapshot(m)
			s.applyMu.Unlock()
		}
	}
}

// applyInline is the raft loop's raftnode.InlineApplier: it applies a batch
// of a Ready that appended nothing (so no fsync to overlap with) right on
// the raft loop, which saves the apply goroutine's wake-up on every
// single-client write. It declines, leaving the batch to the apply loop,
// whatever could block or call back into the raft loop: conf changes
// (ApplyConfChange runs on the raft loop), a batch after which a snapshot
// is due, a backend whose write lock is taken (a commit's fsync), and any
// moment the apply loop is busy (sending a snapshot).
func (s *Server) applyInline(ap raftnode.Apply) (bool, error) {
	if ap.NeedsPersist() || !isEmptySnap(ap.Snapshot) || len(ap.Entries) == 0 {
		return false, nil
	}
	for _, e := range ap.Entries {
		if e.Type != raftpb.EntryNormal {
			return false, nil
		}
	}
	if last := ap.Entries[len(ap.Entries)-1].Index; last-s.snapshotIndex.Load() > s.cfg.SnapshotCount {
		return false, nil
	}
	if !s.be.WriteIdle() || !s.applyMu.TryLock() {
		return false, nil
	}
	defer s.applyMu.Unlock()
	return true, s.applyBatch(ap)
}

func (s *Server) applyBatch(ap raftnode.Apply) error {
	if !isEmptySnap(ap.Snapshot) {
		// The snapshot's .snap file and WAL record must be durable before
		// the state machine jumps to it.
		if err := s.waitPersisted(ap); err != nil {
			return err
		}
		if err := s.installSnapshot(ap.Snapshot); err != nil {
			return err
		}
	}
	if ap.NeedsPersist() {
		// A follower can learn an entry is committed before its own WAL
		// holds it; the backend must not get ahead of the local WAL.
		if err := s.waitPersisted(ap); err != nil {
			return err
		}
	}
	var last raftpb.Entry
	for _, e := range ap.Entries {
		if e.Index <= s.applied.Applied() {
			continue
		}
		switch e.Type {
		case raftpb.EntryNormal:
			id, r := s.applier.Normal(e)
			if len(e.Data) == 0 {
				s.onEmptyEntry(e.Term)
			}
			if id != 0 {
				s.w.Trigger(id, applyResult{resp: r.Resp, err: r.Err, physical: r.Physical})
			}
			if errors.Is(r.Err, apply.ErrUnsupported) {
				// Going on would leave this member's state different from
				// every etcd member's. The entry stays unapplied; a restart
				// refuses it at start-up with the same words.
				return fmt.Errorf("%w; stopping: cairn would diverge from the cluster by skipping it", r.Err)
			}
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				return fmt.Errorf("decode conf change at index %d: %w", e.Index, err)
			}
			// A conf change must not reach raft before the Ready that
			// committed it is persisted.
			if err := s.waitPersisted(ap); err != nil {
				return err
			}
			err := s.applier.ConfChange(e, cc, func(cc raftpb.ConfChange) *raftpb.ConfState {
				cs := s.node.ApplyConfChange(cc)
				if cs != nil {
					s.confState.set(*cs)
				}
				return cs
			})
			if err != nil {
				s.lg.Warn("rejected conf change", zap.String("node-id", membership.FormatID(cc.NodeID)), zap.Error(err))
			} else {
				s.peers.changed(cc.NodeID, s.cl.Member(cc.NodeID))
			}
			s.confChangeApplied(cc, err)
		default:
			// EntryConfChangeV2 (joint consensus) is never proposed by etcd or
			// cairn; etcd refuses it too.
			return fmt.Errorf("unknown entry type %v at index %d", e.Type, e.Index)
		}
		last = e
	}
	if last.Index == 0 {
		return nil
	}
	// A failed backend commit leaves the store behind the log: stop the
	// member (the one fatal path) rather than keep answering from state
	// that is not on disk. A restart replays the WAL past the consistent
	// index the backend last committed.
	if err := s.be.Err(); err != nil {
		return fmt.Errorf("backend commit failed: %w", err)
	}
	s.m.proposalsApplied.Set(float64(last.Index))
	s.m.proposalsCommitted.Set(float64(s.CommittedIndex()))
	s.applied.Trigger(last.Index)
	if last.Index-s.snapshotIndex.Load() > s.cfg.SnapshotCount {
		if err := s.waitPersisted(ap); err != nil {
			return err
		}
		if err := s.snapshot(last.Index); err != nil {
			return fmt.Errorf("snapshot at index %d: %w", last.Index, err)
		}
	}
	return nil
}

// waitPersisted waits until the batch's Ready is durable. If persisting
// failed the Ready loop has stopped and Persisted never closes: the error
// then ends the apply loop instead of hanging it.
func (s *Server) waitPersisted(ap raftnode.Apply) error {
	select {
	case <-ap.Persisted:
		return nil
	case <-s.node.Done():
		select {
		case <-ap.Persisted:
			return nil
		default:
		}
		return ErrStopped
	}
}

func isEmptySnap(sn raftpb.Snapshot) bool { return sn.Metadata.Index == 0 }
