package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/failpoint"
)

// nextTmpName is the file the next segment is prepared in, as etcd names it.
const nextTmpName = "0.tmp"

// Save appends ents and then st (when not empty) as one write, and makes them
// durable with one fdatasync when raft requires it. See the package
// documentation for the full contract. In short:
//
//   - Threading: safe to call from any goroutine; calls are serialised. The
//     server calls it from its Ready loop only.
//   - Durability: when Save returns nil and raft.MustSync(st, previous state,
//     len(ents)) held, everything saved so far is on stable storage. When it
//     did not (only the commit index moved), the records are written to the
//     file but not synced.
//   - Ownership: Save only reads st and ents, never retains them; the caller
//     may reuse them as soon as it returns.
//   - Errors: a failed write, sync or cut is returned (never panicked) and
//     every later append returns ErrFailed; the half-written record, if any,
//     is truncated away on a best-effort basis. Reopen to continue.
//
// If the tail ends past the segment size, Save cuts to a new segment.
func (w *WAL) Save(st raftpb.HardState, ents []raftpb.Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.checkWritable(); err != nil {
		return err
	}
	emptyState := raft.IsEmptyHardState(st)
	if emptyState && len(ents) == 0 {
		return nil
	}
	mustSync := raft.MustSync(st, w.state, len(ents))

	crc := w.crc
	w.buf = w.buf[:0]
	for i := range ents {
		if err := w.frameMsg(&crc, EntryType, &ents[i]); err != nil {
			return err
		}
	}
	if !emptyState {
		// Marshal from a field: taking &st would move st to the heap on every call.
		w.stBuf = st
		if err := w.frameMsg(&crc, StateType, &w.stBuf); err != nil {
			return err
		}
	}
	if err := w.writeBuf(); err != nil {
		return err
	}
	w.crc = crc
	if len(ents) > 0 {
		w.enti = ents[len(ents)-1].Index
	}
	if !emptyState {
		w.state = st
	}
	if mustSync {
		failpoint.Crash(failpoint.WALBeforeFsync) // test builds only
	}
	if w.off < w.segSize {
		if mustSync && !w.deferSync() {
			return w.syncTail()
		}
		return nil
	}
	return w.cut()
}

// SaveSnapshot appends a snapshot record and syncs. A snapshot other than
// the zero one must carry a ConfState (ErrSnapshotNoConfState).
func (w *WAL) SaveSnapshot(s Snapshot) error {
	if s.ConfState == nil && s.Index > 0 {
		return fmt.Errorf("wal: save snapshot index %d term %d: %w", s.Index, s.Term, ErrSnapshotNoConfState)
	}
	b, err := s.marshal()
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.checkWritable(); err != nil {
		return err
	}
	crc := w.crc
	w.buf = w.buf[:0]
	w.frame(&crc, SnapshotType, b)
	if err := w.writeBuf(); err != nil {
		return err
	}
	w.crc = crc
	if w.enti < s.Index {
		w.enti = s.Index
	}
	return w.syncTail()
}

func (w *WAL) checkWritable() error {
	switch {
	case w.closed:
		return ErrClosed
	case w.err != nil:
		return fmt.Errorf("%w: %w", ErrFailed, w.err)
	case !w.ready:
		return ErrNotWritable
	}
	return nil
}

// fail records the first write failure; from then on appends are refused.
func (w *WAL) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

// writeBuf writes w.buf at the tail's offset with one write call.
func (w *WAL) writeBuf() error {
	t := w.tail()
	n, err := disk.WriteAt(t.f.File, w.buf, w.off)
	if err != nil {
		if n > 0 {
			// Drop the partial record so that the file ends in whole records.
			if terr := disk.Truncate(t.f.File, w.off); terr != nil {
				w.lg.Warn("failed to truncate a partial WAL write", zap.String("path", t.name), zap.Error(terr))
			}
		}
		return w.fail(fmt.Errorf("wal: write %s: %w", t.name, err))
	}
	w.off += int64(n)
	w.checkInvariants()
	return nil
}

func (w *WAL) syncTail() error {
	if err := w.fdatasync(w.tail().f.File); err != nil {
		return w.fail(err)
	}
	if failpoint.On(failpoint.WALSlowFsync) {
		time.Sleep(slowFsyncDelay)
	}
	w.lastSync = time.Now()
	return nil
}

// ackBeforeFsyncPeriod is how often the AckBeforeFsync seeded bug syncs.
const ackBeforeFsyncPeriod = 300 * time.Millisecond

// deferSync is the seeded bug failpoint.AckBeforeFsync (test builds only):
// a Save that raft requires to be durable returns without its fsync when
// the tail was synced less than ackBeforeFsyncPeriod ago (a time-based
// group commit), so the member commits, applies and answers entries whose
// records are not on disk yet.
func (w *WAL) deferSync() bool {
	return failpoint.On(failpoint.AckBeforeFsync) && time.Since(w.lastSync) < ackBeforeFsyncPeriod
}

// slowFsyncDelay is what the test-only wal-slow-fsync hook adds to each
// fdatasync of the tail.
const slowFsyncDelay = time.Second

// cut closes the tail (truncated to its records, synced) and continues in a
// new segment named (seq+1, enti+1), which starts with a crc record carrying
// the chain value, the metadata and the last HardState. The new segment is
// written and synced as 0.tmp and then renamed, so a segment with a .wal name
// always has its header.
func (w *WAL) cut() error {
	t := w.tail()
	if err := disk.Truncate(t.f.File, w.off); err != nil {
		return w.fail(fmt.Errorf("wal: cut: truncate %s: %w", t.name, err))
	}
	if err := w.syncTail(); err != nil {
		return err
	}
	if w.next == nil {
		if err := w.prepareNext(); err != nil {
			return w.fail(fmt.Errorf("wal: cut: %w", err))
		}
	}
	f := w.next
	w.next = nil
	tmpPath := f.Name()
	name := segmentName{name: walName(t.seq+1, w.enti+1), seq: t.seq + 1, index: w.enti + 1}

	crc := w.crc
	w.buf = w.buf[:0]
	w.frame(&crc, CrcType, nil)
	w.frame(&crc, MetadataType, w.metadata)
	if !raft.IsEmptyHardState(w.state) {
		if err := w.frameMsg(&crc, StateType, &w.state); err != nil {
			f.Close()
			return w.fail(err)
		}
	}
	if _, err := disk.WriteAt(f.File, w.buf, 0); err != nil {
		f.Close()
		return w.fail(fmt.Errorf("wal: cut: write %s: %w", tmpPath, err))
	}
	if err := w.fdatasync(f.File); err != nil {
		f.Close()
		return w.fail(err)
	}
	fpath := filepath.Join(w.dir, name.name)
	if err := os.Rename(tmpPath, fpath); err != nil {
		f.Close()
		return w.fail(fmt.Errorf("wal: cut: %w", err))
	}
	if err := w.fsyncDir(w.dirFile); err != nil {
		f.Close()
		return w.fail(err)
	}
	// The lock stays held across the rename: it belongs to the open file.
	w.segs = append(w.segs, segment{segmentName: name, f: f})
	w.off, w.crc = int64(len(w.buf)), crc
	w.lg.Info("created a new WAL segment", zap.String("path", fpath))
	if err := w.prepareNext(); err != nil {
		// Not fatal: the next cut tries again.
		w.lg.Warn("failed to prepare the next WAL segment", zap.Error(err))
	}
	w.checkInvariants()
	return nil
}

// prepareNext creates and preallocates 0.tmp, the next segment, so that a cut
// does not wait for the allocation. It runs synchronously, right after a cut
// or open, rather than in a background goroutine as etcd's file pipeline does.
func (w *WAL) prepareNext() error {
	if w.next != nil {
		return nil
	}
	p := filepath.Join(w.dir, nextTmpName)
	f, err := fileutil.TryLockFile(p, os.O_WRONLY|os.O_CREATE, fileutil.PrivateFileMode)
	if err != nil {
		return fmt.Errorf("wal: prepare %s: %w", p, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return fmt.Errorf("wal: prepare %s: %w", p, err)
	}
	if err := fileutil.Preallocate(f.File, w.segSize, true); err != nil {
		f.Close()
		os.Remove(p)
		return fmt.Errorf("wal: prepare %s: preallocate: %w", p, err)
	}
	w.next = f
	return nil
}
