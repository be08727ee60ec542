package backend

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// op is one write of a WriteTx, kept until Unlock publishes it to readers.
type op struct {
	bucket, key, val []byte
	del              bool
}

// WriteTx is the backend's single write transaction. Exactly one goroutine
// holds it between Backend.Lock and WriteTx.Unlock; only that goroutine may
// call its methods. Its reads see its own writes. Slices passed to Put must
// not be modified afterwards (bbolt and readers keep them until the commit).
type WriteTx struct {
	b *Backend
	// ops are the writes since Lock, published to readers at Unlock.
	ops []op
	// commit forces a commit at Unlock (set by Create/DeleteBucket).
	commit bool
}

// Lock acquires the write transaction, blocking while another goroutine
// holds it. The caller must call Unlock. Must not be called while the same
// goroutine holds a ReadView.
func (b *Backend) Lock() *WriteTx {
	b.wmu.Lock()
	return &b.wt
}

// Unlock publishes the transaction's writes to new readers, commits if
// BatchLimit writes are pending (or a bucket was created or deleted), and releases the
// write lock. The returned error is a commit error (see ErrCommitFailed).
func (t *WriteTx) Unlock() error {
	b := t.b
	var err error
	switch {
	case b.err != nil:
		err = b.err
	case t.commit || b.pending >= b.cfg.BatchLimit:
		// Committing now. Views may open while the commit runs (see
		// commitLocked), so they must see these writes already.
		if len(t.ops) > 0 {
			b.cur.ov.publish(t.ops)
		}
		err = b.commitLocked()
	case len(t.ops) > 0:
		b.cur.ov.publish(t.ops)
	}
	clear(t.ops)
	t.ops = t.ops[:0]
	t.commit = false
	b.wmu.Unlock()
	return err
}

func (t *WriteTx) tx() (*bolt.Tx, error) {
	if t.b.err != nil {
		return nil, t.b.err
	}
	if t.b.wtx == nil {
		return nil, ErrClosed
	}
	return t.b.wtx, nil
}

func (t *WriteTx) bucket(name []byte) (*bolt.Bucket, error) {
	tx, err := t.tx()
	if err != nil {
		return nil, err
	}
	bk := tx.Bucket(name)
	if bk == nil {
		return nil, fmt.Errorf("bucket %q: %w", name, ErrBucketNotFound)
	}
	return bk, nil
}

// Put stores key=value in bucket.
func (t *WriteTx) Put(bucket, key, value []byte) error {
	return t.put(bucket, key, value, false)
}

// PutSeq is Put for keys written in increasing order (mvcc revisions): bbolt
// fills pages to 90% instead of 50%.
func (t *WriteTx) PutSeq(bucket, key, value []byte) error {
	return t.put(bucket, key, value, true)
}

func (t *WriteTx) put(bucket, key, value []byte, seq bool) error {
	bk, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	if seq {
		bk.FillPercent = 0.9
	}
	if err := bk.Put(key, value); err != nil {
		return fmt.Errorf("put %q/%q: %w", bucket, key, err)
	}
	t.ops = append(t.ops, op{bucket: bucket, key: key, val: value})
	t.b.record(recPut, bucket, key, value)
	t.b.pending++
	t.b.pendingBytes += int64(len(key) + len(value))
	t.b.dirty = true
	return nil
}

// Delete removes key from bucket (no error if absent).
func (t *WriteTx) Delete(bucket, key []byte) error {
	bk, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	if err := bk.Delete(key); err != nil {
		return fmt.Errorf("delete %q/%q: %w", bucket, key, err)
	}
	t.ops = append(t.ops, op{bucket: bucket, key: key, del: true})
	t.b.record(recDelete, bucket, key, nil)
	t.b.pending++
	t.b.dirty = true
	return nil
}

// CreateBucket creates bucket name if it does not exist. A creation commits
// the transaction at Unlock.
func (t *WriteTx) CreateBucket(name []byte) error {
	tx, err := t.tx()
	if err != nil {
		return err
	}
	if tx.Bucket(name) != nil {
		return nil
	}
	if _, err := tx.CreateBucket(name); err != nil {
		return fmt.Errorf("create bucket %q: %w", name, err)
	}
	t.b.record(recCreateBucket, name, nil, nil)
	t.b.dirty = true
	t.commit = true // so that views list the bucket (rare: start-up only)
	return nil
}

// DeleteBucket deletes bucket name and its contents (no error if absent).
// The transaction is committed at Unlock so readers switch at once.
func (t *WriteTx) DeleteBucket(name []byte) error {
	tx, err := t.tx()
	if err != nil {
		return err
	}
	if tx.Bucket(name) == nil {
		return nil
	}
	if err := tx.DeleteBucket(name); err != nil {
		return fmt.Errorf("delete bucket %q: %w", name, err)
	}
	t.b.record(recDeleteBucket, name, nil, nil)
	t.b.dirty = true
	t.commit = true
	return nil
}

// Touch marks the transaction dirty without writing, so the next periodic
// commit runs the pre-commit hooks (used for consistent-index-only applies).
func (t *WriteTx) Touch() { t.b.dirty = true }

// Get returns the value of key in bucket, including this transaction's
// uncommitted writes. The slice is valid until Unlock.
func (t *WriteTx) Get(bucket, key []byte) ([]byte, bool) {
	tx, err := t.tx()
	if err != nil {
		return nil, false
	}
	return boltGet(tx.Bucket(bucket), key)
}

// Range is ReadView.Range over the transaction's own state. fn must not
// write through t.
func (t *WriteTx) Range(bucket, start, end []byte, limit int, fn func(k, v []byte) bool) {
	tx, err := t.tx()
	if err != nil {
		return
	}
	mergeRange(tx.Bucket(bucket), nil, start, end, limit, fn)
}
