package backend

import (
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// Replace makes the bbolt file at src the database, as installing a snapshot
// received from the leader requires: writes not yet committed are discarded
// (the whole state is being replaced), src is renamed over the database file
// and the directory fsynced, and the backend switches to it. Views and
// snapshots opened before keep reading the old file, which is closed once
// the last of them ends (as after a defrag). src must be on the same file
// system as the database. The caller must not hold the WriteTx or a
// ReadView; a running defrag finishes first.
//
// A failure before the rename leaves the database as it was; after it, the
// backend fails (ErrCommitFailed) and the process must stop.
func (b *Backend) Replace(src string) error {
	b.defragMu.Lock()
	defer b.defragMu.Unlock()
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.closed.Load() {
		return ErrClosed
	}
	if b.err != nil {
		return b.err
	}
	// Check the new file before it takes the database's place.
	probe, err := bolt.Open(src, 0o600, &bolt.Options{ReadOnly: true, Timeout: b.boltOptions().Timeout})
	if err != nil {
		return fmt.Errorf("replace backend with %s: %w", src, err)
	}
	if err := probe.Close(); err != nil {
		return fmt.Errorf("replace backend with %s: %w", src, err)
	}
	if err := os.Rename(src, b.cfg.Path); err != nil {
		return fmt.Errorf("replace backend: %w", err)
	}
	if dir, err := os.Open(filepath.Dir(b.cfg.Path)); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	// From here the new file is the database: a failure is the backend's.
	if b.wtx != nil {
		_ = b.wtx.Rollback()
		b.wtx = nil
	}
	clear(b.wt.ops)
	b.wt.ops = b.wt.ops[:0]
	b.pending, b.pendingBytes, b.dirty = 0, 0, false
	db, err := bolt.Open(b.cfg.Path, 0o600, b.boltOptions())
	if err != nil {
		return b.fail(fmt.Errorf("open replaced backend: %w", err))
	}
	b.epochMu.Lock()
	if b.cur != nil {
		b.cur.release()
		b.cur = nil
	}
	old := b.db
	b.db = db
	err = b.beginEpochLocked()
	b.epochMu.Unlock()
	b.retire(old)
	if err != nil {
		return b.fail(err)
	}
	return nil
}
