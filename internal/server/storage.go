package server

import (
	"fmt"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/internal/failpoint"
	"github.com/cairnkv/cairn/internal/snap"
	"github.com/cairnkv/cairn/internal/wal"
)

// raftStorage is the durable raft log: the WAL plus the snapshot files. It
// implements raftnode.Persister for the Ready loop, and takes snapshots
// from the apply goroutine; a mutex orders the two.
type raftStorage struct {
	mu sync.Mutex
	w  *wal.WAL
	ss *snap.Snapshotter
}

var _ interface {
	Save(raftpb.HardState, []raftpb.Entry) error
	SaveSnapshot(raftpb.Snapshot) error
} = (*raftStorage)(nil)

// Save appends entries and the hard state durably (one WAL write, at most
// one fdatasync).
func (s *raftStorage) Save(st raftpb.HardState, ents []raftpb.Entry) error {
	if raft.IsEmptyHardState(st) && len(ents) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Save(st, ents)
}

// SaveSnapshot persists a snapshot: the .snap file first, then the WAL
// snapshot record, so that the WAL never points at a missing snapshot.
func (s *raftStorage) SaveSnapshot(snapshot raftpb.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveSnapshotLocked(snapshot)
}

func (s *raftStorage) saveSnapshotLocked(snapshot raftpb.Snapshot) error {
	if err := s.ss.SaveSnap(snapshot); err != nil {
		return fmt.Errorf("save snap file: %w", err)
	}
	failpoint.Crash(failpoint.SnapshotBeforeWALRecord) // test builds only
	md := snapshot.Metadata
	if err := s.w.SaveSnapshot(wal.Snapshot{Index: md.Index, Term: md.Term, ConfState: &md.ConfState}); err != nil {
		return fmt.Errorf("save wal snapshot record: %w", err)
	}
	return nil
}

// saveLocalSnapshot persists a snapshot this member took and releases the
// WAL segments it makes unnecessary.
func (s *raftStorage) saveLocalSnapshot(snapshot raftpb.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.saveSnapshotLocked(snapshot); err != nil {
		return err
	}
	failpoint.Crash(failpoint.SnapshotBeforeWALRelease) // test builds only
	if err := s.w.ReleaseLockTo(snapshot.Metadata.Index); err != nil {
		return fmt.Errorf("release wal: %w", err)
	}
	return nil
}

// Close closes the WAL.
func (s *raftStorage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Close()
}
