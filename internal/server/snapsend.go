package server

import (
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/rafthttp"
)

// snapshotSender is the peer transport's snapshot path: it sends m (a
// MsgSnap) with db on a connection of its own, so a large database never
// delays other messages, closes db, and calls done with the outcome (after
// reporting it to raft).
type snapshotSender interface {
	SendSnapshot(m raftpb.Message, db rafthttp.SnapshotDB, done func(ok bool))
}

// maxPendingSnapshots bounds the MsgSnaps waiting for the apply loop; more
// are refused (raft retries).
const maxPendingSnapshots = 16

// snapshotPause is how long after a snapshot was sent the leader keeps its
// raft log uncompacted, so the follower can catch up from the log (etcd's
// value).
const snapshotPause = 30 * time.Second

// raftSender sits between the Ready loop and the peer transport; its Send
// runs on the Ready loop, so it must never wait for that loop. Every
// message goes straight to the transport except MsgSnap: raft builds it from
// its last local snapshot, while a follower needs the state machine itself,
// so it goes to the apply loop, which rebuilds it from the applied state
// (sendSnapshot).
type raftSender struct{ s *Server }

func (r raftSender) Send(msgs []raftpb.Message) {
	if r.s.tr == nil {
		return // no peers: a single member sends nothing
	}
	r.s.v2stats.sent(msgs)
	n := 0
	for _, m := range msgs {
		if m.Type != raftpb.MsgSnap {
			msgs[n] = m
			n++
			continue
		}
		select {
		case r.s.snapc <- m:
		default:
			r.s.lg.Warn("dropped snapshot message: too many pending", zap.String("to", membership.FormatID(m.To)))
			// Send runs on the Ready loop, which ReportSnapshot waits for:
			// report from another goroutine.
			go r.s.node.ReportSnapshot(m.To, raft.SnapshotFailure)
		}
	}
	if n > 0 {
		r.s.tr.Send(msgs[:n])
	}
}

// sendSnapshot rebuilds MsgSnap m from the applied state, as etcd's leader
// does: metadata of the last applied entry, the membership as v2-store JSON,
// and a copy of the backend whose consistent index is that entry. Apply
// goroutine only, between batches, so all three agree.
func (s *Server) sendSnapshot(m raftpb.Message) {
	sender, ok := s.tr.(snapshotSender)
	if !ok {
		s.lg.Warn("peer transport cannot send snapshots", zap.String("to", membership.FormatID(m.To)))
		s.node.ReportSnapshot(m.To, raft.SnapshotFailure)
		return
	}
	msg, db, err := s.mergedSnapshot(m)
	if err != nil {
		s.lg.Error("failed to build snapshot for follower", zap.String("to", membership.FormatID(m.To)), zap.Error(err))
		s.node.ReportSnapshot(m.To, raft.SnapshotFailure)
		return
	}
	s.snapsInflight.Add(1)
	sender.SendSnapshot(msg, db, func(ok bool) {
		if ok {
			s.lastSnapshotSent.Store(time.Now().UnixNano())
		}
		s.snapsInflight.Add(-1)
	})
}

func (s *Server) mergedSnapshot(m raftpb.Message) (raftpb.Message, rafthttp.SnapshotDB, error) {
	index := s.applied.Applied()
	term, err := s.node.Storage().Term(index)
	if err != nil {
		return m, nil, fmt.Errorf("term of applied index %d: %w", index, err)
	}
	data, err := s.cl.MarshalV2Snapshot()
	if err != nil {
		return m, nil, fmt.Errorf("encode membership: %w", err)
	}
	db, err := s.be.Snapshot()
	if err != nil {
		return m, nil, fmt.Errorf("snapshot backend: %w", err)
	}
	m.Snapshot = &raftpb.Snapshot{
		Metadata: raftpb.SnapshotMetadata{Index: index, Term: term, ConfState: s.confState.get()},
		Data:     data,
	}
	s.lg.Info("sending merged snapshot", zap.String("to", membership.FormatID(m.To)),
		zap.Uint64("snapshot-index", index), zap.Int64("bytes", db.Size()))
	return m, db, nil
}

// compactionHeld reports whether the raft log must stay whole because a
// follower is being (or was just) brought up by snapshot.
func (s *Server) compactionHeld() bool {
	if s.snapsInflight.Load() > 0 {
		return true
	}
	last := s.lastSnapshotSent.Load()
	return last != 0 && time.Since(time.Unix(0, last)) < snapshotPause
}
