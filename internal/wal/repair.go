package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// Repair removes a torn record from the end of the last segment in dir,
// keeping a copy of the whole file as <name>.broken. It returns true when the
// last segment now reads cleanly to its end (including when nothing needed
// repair), and false when the segment is corrupt in a way a crash cannot
// explain (a bad record anywhere but at the tail), when the segment is locked
// by a running WAL, or on an I/O error. The server calls it once after
// ReadAll fails with io.ErrUnexpectedEOF, then reopens.
func Repair(lg *zap.Logger, dir string) bool {
	if lg == nil {
		lg = zap.NewNop()
	}
	names, err := readWALNames(lg, dir)
	if err != nil {
		lg.Warn("failed to repair", zap.String("dir", dir), zap.Error(err))
		return false
	}
	p := filepath.Join(dir, names[len(names)-1].name)
	f, err := fileutil.TryLockFile(p, os.O_RDWR, fileutil.PrivateFileMode)
	if err != nil {
		lg.Warn("failed to repair", zap.String("path", p), zap.Error(err))
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		lg.Warn("failed to repair", zap.String("path", p), zap.Error(err))
		return false
	}
	lg.Info("repairing", zap.String("path", p))

	d := newDecoder(source{path: p, r: f.File, size: st.Size()})
	var rec Record
	for {
		err := d.next(&rec)
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF):
			lg.Info("repaired", zap.String("path", p), zap.Error(io.EOF))
			return true
		case errors.Is(err, ErrTornWrite):
			if err := backupAndTruncate(f.File, d.off); err != nil {
				lg.Warn("failed to repair", zap.String("path", p), zap.Error(err))
				return false
			}
			lg.Info("repaired", zap.String("path", p), zap.Error(io.ErrUnexpectedEOF))
			return true
		default:
			lg.Warn("failed to repair", zap.String("path", p), zap.Error(err))
			return false
		}
	}
}

// backupAndTruncate copies f to <name>.broken, then truncates f to off and syncs it.
func backupAndTruncate(f *os.File, off int64) error {
	broken := f.Name() + ".broken"
	bf, err := os.OpenFile(broken, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileutil.PrivateFileMode)
	if err != nil {
		return fmt.Errorf("wal: repair: create backup: %w", err)
	}
	defer bf.Close()
	if _, err := io.Copy(bf, io.NewSectionReader(f, 0, 1<<62)); err != nil {
		return fmt.Errorf("wal: repair: copy to %s: %w", broken, err)
	}
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("wal: repair: truncate: %w", err)
	}
	if err := fileutil.Fsync(f); err != nil {
		return fmt.Errorf("wal: repair: fsync: %w", err)
	}
	return nil
}

// scan decodes every record of the segments in srcs, calling fn for each.
// A torn tail ends the scan without error, as for a read-only WAL.
func scan(srcs []source, fn func(rec *Record, d *decoder) error) error {
	d := newDecoder(srcs...)
	var rec Record
	var err error
	for err = d.next(&rec); err == nil; err = d.next(&rec) {
		if ferr := fn(&rec, d); ferr != nil {
			return ferr
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil
	}
	return err
}

// ValidSnapshotEntries returns the snapshot records of every segment in dir
// whose index is at most the commit index of the last HardState: the
// snapshots a .snap file may legitimately exist for. It opens the files
// read-only and locks nothing.
func ValidSnapshotEntries(lg *zap.Logger, dir string) ([]Snapshot, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	names, err := readWALNames(lg, dir)
	if err != nil {
		return nil, err
	}
	srcs, closeAll, err := openReadOnly(dir, names)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	var (
		snaps []Snapshot
		state raftpb.HardState
	)
	err = scan(srcs, func(rec *Record, d *decoder) error {
		switch rec.Type {
		case SnapshotType:
			s, err := unmarshalSnapshot(rec.Data)
			if err != nil {
				return d.badRecord(err)
			}
			snaps = append(snaps, s)
		case StateType:
			st, err := decodeHardState(rec, d)
			if err != nil {
				return err
			}
			state = st
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	n := 0
	for _, s := range snaps {
		if s.Index <= state.Commit {
			snaps[n] = s
			n++
		}
	}
	return snaps[:n:n], nil
}

// Verify reads the WAL in dir from the segment holding snap to the end,
// checking the CRC chain, the metadata and every record, and returns the last
// HardState. It opens the files read-only and locks nothing; a torn tail is
// accepted. It fails with ErrSnapshotNotFound when no snapshot record matches
// snap, and ErrSnapshotMismatch when one has its index with another term.
func Verify(lg *zap.Logger, dir string, snap Snapshot) (*raftpb.HardState, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	names, err := selectWALFiles(lg, dir, snap.Index)
	if err != nil {
		return nil, err
	}
	srcs, closeAll, err := openReadOnly(dir, names)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	var (
		metadata []byte
		state    raftpb.HardState
		match    bool
	)
	err = scan(srcs, func(rec *Record, d *decoder) error {
		switch rec.Type {
		case MetadataType:
			if metadata != nil && !bytes.Equal(metadata, rec.Data) {
				return d.badRecord(ErrMetadataConflict)
			}
			if metadata == nil {
				metadata = bytes.Clone(rec.Data)
			}
		case SnapshotType:
			s, err := unmarshalSnapshot(rec.Data)
			if err != nil {
				return d.badRecord(err)
			}
			if s.Index == snap.Index {
				if s.Term != snap.Term {
					return fmt.Errorf("wal: snapshot at index %d has term %d, want %d: %w", s.Index, s.Term, snap.Term, ErrSnapshotMismatch)
				}
				match = true
			}
		case StateType:
			st, err := decodeHardState(rec, d)
			if err != nil {
				return err
			}
			state = st
		case EntryType:
			var e raftpb.Entry
			if err := e.Unmarshal(rec.Data); err != nil {
				return d.badRecord(fmt.Errorf("%w: entry: %v", ErrBadRecord, err))
			}
		case CrcType:
		default:
			return d.badRecord(fmt.Errorf("%w: unexpected record type %d", ErrBadRecord, rec.Type))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !match {
		return nil, fmt.Errorf("wal: snapshot index %d term %d: %w", snap.Index, snap.Term, ErrSnapshotNotFound)
	}
	return &state, nil
}

// decodeHardState decodes a state record; a malformed one is reported as a
// bad record at the decoder's position.
func decodeHardState(rec *Record, d *decoder) (raftpb.HardState, error) {
	var st raftpb.HardState
	if err := st.Unmarshal(rec.Data); err != nil {
		return raftpb.HardState{}, d.badRecord(fmt.Errorf("%w: hard state: %v", ErrBadRecord, err))
	}
	return st, nil
}
