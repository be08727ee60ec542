package server

import (
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/snap"
)

// snapshot takes a raft snapshot at index (the last applied entry), writes
// it to disk, releases the WAL before it and compacts the in-memory raft
// log, keeping SnapshotCatchUpEntries for slow followers.
//
// Order matters for crash safety: the backend is committed first, so its
// consistent index is at least the snapshot's index before any WAL segment
// the snapshot makes redundant can be removed.
func (s *Server) snapshot(index uint64) error {
	start := time.Now()
	if err := s.be.ForceCommit(); err != nil {
		return fmt.Errorf("commit backend: %w", err)
	}
	data, err := s.cl.MarshalV2Snapshot()
	if err != nil {
		return fmt.Errorf("encode membership: %w", err)
	}
	cs := s.confState.get()
	ms := s.node.Storage()
	snap, err := ms.CreateSnapshot(index, &cs, data)
	if err != nil {
		if errors.Is(err, raft.ErrSnapOutOfDate) {
			return nil
		}
		return fmt.Errorf("create snapshot: %w", err)
	}
	if err := s.store.saveLocalSnapshot(snap); err != nil {
		return err
	}
	s.snapshotIndex.Store(index)
	s.m.snapshotSave.Observe(time.Since(start).Seconds())
	s.lg.Info("saved snapshot", zap.Uint64("snapshot-index", index))

	if s.compactionHeld() {
		s.lg.Info("skip compacting raft log while a snapshot is being sent to a follower")
		s.purgeFiles()
		return nil
	}
	compactIndex := uint64(1)
	if index > s.cfg.SnapshotCatchUpEntries {
		compactIndex = index - s.cfg.SnapshotCatchUpEntries
	}
	if err := ms.Compact(compactIndex); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return fmt.Errorf("compact raft log: %w", err)
	}
	s.lg.Info("compacted Raft logs", zap.Uint64("compact-index", compactIndex))
	s.purgeFiles()
	return nil
}

// restoreMembership loads the member set from a raft snapshot's v2 store.
func restoreMembership(cl *membership.Cluster, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	members, removed, version, err := membership.UnmarshalV2Snapshot(data)
	if err != nil {
		return err
	}
	cl.Restore(members, removed, version)
	return nil
}

// purgeFiles removes .snap files beyond --max-snapshots and WAL segments
// beyond --max-wals that the WAL no longer holds. Failures are logged: old
// files waste space but do not endanger data.
func (s *Server) purgeFiles() {
	if _, err := snap.PurgeSnapshots(s.lg, s.cfg.SnapDir(), s.cfg.MaxSnapFiles); err != nil {
		s.lg.Warn("failed to purge old snapshot files", zap.Error(err))
	}
	if _, err := snap.PurgeWALs(s.lg, s.cfg.WALPath(), s.cfg.MaxWALFiles); err != nil {
		s.lg.Warn("failed to purge old WAL files", zap.Error(err))
	}
}
