package backend

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// Snapshot is a consistent copy of the committed database, for streaming to
// a follower or a `snapshot save` client. It pins a bbolt read transaction:
// Close it promptly (a commit that must remap the file waits for it).
// Its methods are for one goroutine.
type Snapshot struct {
	tx *bolt.Tx
}

// Snapshot commits pending writes and returns a snapshot of the result.
// Any goroutine holding neither the WriteTx nor a ReadView.
func (b *Backend) Snapshot() (*Snapshot, error) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if b.dirty {
		if err := b.commitLocked(); err != nil {
			return nil, err
		}
	} else if b.err != nil {
		return nil, b.err
	}
	tx, err := b.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return &Snapshot{tx: tx}, nil
}

// Size is the number of bytes WriteTo writes.
func (s *Snapshot) Size() int64 { return s.tx.Size() }

// WriteTo writes the whole database file image to w.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := s.tx.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("snapshot write: %w", err)
	}
	return n, nil
}

// Close releases the snapshot.
func (s *Snapshot) Close() error { return s.tx.Rollback() }

// defragTxLimit is the number of bytes copied per transaction while
// defragmenting (bounds the memory of one bbolt transaction).
const defragTxLimit = 64 << 20

// Defrag rewrites the database into a new file without free pages and
// replaces the old one. Writers and new readers wait for the whole
// operation; it waits for open views and snapshots to end. Any goroutine
// holding neither the WriteTx nor a ReadView.
func (b *Backend) Defrag() error {
	start := time.Now()
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.closed.Load() {
		return ErrClosed
	}
	if b.err != nil {
		return b.err
	}
	if b.dirty {
		if err := b.commitLocked(); err != nil {
			return err
		}
	}
	sizeBefore := b.Size()
	_ = b.wtx.Rollback()
	b.wtx = nil
	b.epochMu.Lock()
	defer b.epochMu.Unlock()
	b.cur.release()
	b.cur = nil

	tmp, err := os.CreateTemp(filepath.Dir(b.cfg.Path), "db.tmp.*")
	if err != nil {
		return b.reopenAfterDefrag(fmt.Errorf("defrag: %w", err))
	}
	tmpPath := tmp.Name()
	tmp.Close()
	opts := b.boltOptions()
	opts.NoSync = true // fsynced once below
	tdb, err := bolt.Open(tmpPath, 0o600, opts)
	if err != nil {
		os.Remove(tmpPath)
		return b.reopenAfterDefrag(fmt.Errorf("defrag open temp: %w", err))
	}
	if err := bolt.Compact(tdb, b.db, defragTxLimit); err != nil {
		tdb.Close()
		os.Remove(tmpPath)
		return b.reopenAfterDefrag(fmt.Errorf("defrag copy: %w", err))
	}
	if err := tdb.Sync(); err != nil {
		tdb.Close()
		os.Remove(tmpPath)
		return b.reopenAfterDefrag(fmt.Errorf("defrag sync: %w", err))
	}
	tdb.Close()
	if err := b.db.Close(); err != nil {
		os.Remove(tmpPath)
		return b.fail(fmt.Errorf("defrag close: %w", err))
	}
	b.db = nil
	if err := os.Rename(tmpPath, b.cfg.Path); err != nil {
		os.Remove(tmpPath)
		err = fmt.Errorf("defrag rename: %w", err)
		if rerr := b.reopenLocked(); rerr != nil {
			return b.fail(rerr)
		}
		return err
	}
	if d, err := os.Open(filepath.Dir(b.cfg.Path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	if err := b.reopenLocked(); err != nil {
		return b.fail(err)
	}
	b.lg.Info("finished defragmenting directory",
		zap.String("path", b.cfg.Path),
		zap.Int64("current-db-size-bytes-diff", b.Size()-sizeBefore),
		zap.Int64("current-db-size-bytes", b.Size()),
		zap.Int64("current-db-size-in-use-bytes", b.SizeInUse()),
		zap.Duration("took", time.Since(start)))
	return nil
}

// reopenAfterDefrag restores the read epoch and write tx on the unchanged
// db after a failed defrag and returns cause. Caller holds wmu and epochMu.
func (b *Backend) reopenAfterDefrag(cause error) error {
	if err := b.beginEpochLocked(); err != nil {
		return b.fail(err)
	}
	return cause
}

// reopenLocked opens the file again and begins a new epoch and write tx.
// Caller holds wmu and epochMu.
func (b *Backend) reopenLocked() error {
	db, err := bolt.Open(b.cfg.Path, 0o600, b.boltOptions())
	if err != nil {
		b.cur = newEpoch(nil)
		return fmt.Errorf("defrag reopen: %w", err)
	}
	b.db = db
	return b.beginEpochLocked()
}

// beginEpochLocked is beginLocked for callers already holding epochMu.
func (b *Backend) beginEpochLocked() error {
	rtx, err := b.db.Begin(false)
	if err != nil {
		b.cur = newEpoch(nil)
		return fmt.Errorf("begin read tx: %w", err)
	}
	b.updateSize(rtx)
	b.cur = newEpoch(rtx)
	wtx, err := b.db.Begin(true)
	if err != nil {
		return fmt.Errorf("begin write tx: %w", err)
	}
	b.wtx = wtx
	return nil
}
