package backend

import (
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
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
