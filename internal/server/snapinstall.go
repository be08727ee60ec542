package server

import (
	"fmt"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/schema"
)

// installSnapshot makes a snapshot received from the leader the member's
// state. Apply goroutine only, after the snapshot is durable (its .snap file
// and WAL record were saved by the Ready loop; its database arrived as
// <index>.snap.db through the peer transport).
//
// The backend and the mvcc store keep their identity: the backend switches
// files (Backend.Replace, the operation defrag's switch also performs) and
// the store rebuilds its index (Store.Reload), so readers holding them never
// see a closed store; they wait for the reload or finish on the old file.
// Membership, alarms and the applier's consistent index are then read back
// from the new database.
func (s *Server) installSnapshot(sn raftpb.Snapshot) error {
	start := time.Now()
	index := sn.Metadata.Index
	if index <= s.applied.Applied() {
		s.lg.Warn("ignoring a snapshot not newer than the applied state",
			zap.Uint64("snapshot-index", index), zap.Uint64("applied-index", s.applied.Applied()))
		return nil
	}
	s.lg.Info("applying snapshot", zap.Uint64("incoming-snapshot-index", index),
		zap.Uint64("current-applied-index", s.applied.Applied()))
	path, err := s.store.ss.DBFilePath(index)
	if err != nil {
		return fmt.Errorf("find database of snapshot %d: %w", index, err)
	}
	// A physical compaction still deleting in the old file must end first.
	<-s.kv.WaitCompaction()
	step := time.Now()
	var took []zap.Field // how long each step took, for the "applied snapshot" line
	lap := func(name string) {
		took = append(took, zap.Duration(name, time.Since(step)))
		step = time.Now()
	}
	if err := s.be.Replace(path); err != nil {
		return fmt.Errorf("install database of snapshot %d: %w", index, err)
	}
	// Leases first: the store reattaches its keys to them as it reloads.
	lap("replace-backend-took")
	if err := s.recoverLeases(); err != nil {
		return fmt.Errorf("reload leases from snapshot %d: %w", index, err)
	}
	lap("reload-leases-took")
	if err := s.kv.Reload(); err != nil {
		return fmt.Errorf("rebuild store from snapshot %d: %w", index, err)
	}
	lap("rebuild-index-took")
	s.watchHub.Restore() // watchers resynchronise from the new backend
	if ci := s.kv.ConsistentIndex(); ci != index {
		// etcd checks this only under ETCD_VERIFY; a mismatch means the
		// leader sent a database that does not match the snapshot.
		s.lg.Warn("snapshot database's consistent index differs from the snapshot's index",
			zap.Uint64("consistent-index", ci), zap.Uint64("snapshot-index", index))
	}
	if err := s.reloadFromBackend(); err != nil {
		return fmt.Errorf("reload state from snapshot %d: %w", index, err)
	}
	s.applier.Restore(index)
	lap("reload-membership-took")
	if err := s.openV2(); err != nil {
		return fmt.Errorf("reload v2 store from snapshot %d: %w", index, err)
	}
	lap("reload-v2-took")
	s.confState.set(sn.Metadata.ConfState)
	s.snapshotIndex.Store(index)
	s.applied.Trigger(index)
	s.installs.fire()
	s.lg.Info("applied snapshot", append([]zap.Field{zap.Uint64("snapshot-index", index),
		zap.Duration("took", time.Since(start))}, took...)...)
	return nil
}

// reloadFromBackend reads membership and alarms back from the backend (after
// its file was replaced) and brings the peer transport in line.
func (s *Server) reloadFromBackend() error {
	v := s.be.Read()
	defer v.End()
	raw, removed, err := schema.ReadMembers(v)
	if err != nil {
		return err
	}
	var members []*membership.Member
	for id, b := range raw {
		m, err := membership.UnmarshalMember(b)
		if err != nil {
			return fmt.Errorf("member %s: %w", membership.FormatID(id), err)
		}
		members = append(members, m)
	}
	var removedIDs []uint64
	for id := range removed {
		removedIDs = append(removedIDs, id)
	}
	before := s.cl.Members()
	s.cl.Restore(members, removedIDs, schema.ReadClusterVersion(v))
	for _, m := range before {
		if s.cl.Member(m.ID) == nil {
			s.peers.changed(m.ID, nil)
		}
	}
	s.peers.add(members)
	return s.alarms.Restore(v)
}
