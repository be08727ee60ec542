package backend

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// File is a bbolt file opened for reading only: a saved snapshot, or a
// member's database inspected before the member opens it for writing. It
// takes bbolt's shared file lock, maps the file read-only and never writes
// to it, so inspecting a file leaves it byte for byte as it was.
//
// Threading: a File may be used by several goroutines; each View runs in
// its own bbolt read transaction.
type File struct {
	db *bolt.DB
}

// ErrFileLocked is returned by OpenFile when another process holds the
// file's exclusive lock (a running member) for longer than the timeout.
var ErrFileLocked = errors.New("backend: file is locked by another process")

// OpenFile opens the bbolt file at path read-only. timeout bounds the wait
// for a writer's exclusive lock; 0 waits for as long as it takes. Other
// errors are bbolt's own, unwrapped: cairnctl prints them as etcdutl does.
func OpenFile(path string, timeout time.Duration) (*File, error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w", path, ErrFileLocked)
		}
		return nil, err
	}
	return &File{db: db}, nil
}

// Close releases the file.
func (f *File) Close() error { return f.db.Close() }

// View runs fn in one read transaction. Slices fn receives are valid only
// until fn returns.
func (f *File) View(fn func(FileTx) error) error {
	return f.db.View(func(tx *bolt.Tx) error { return fn(FileTx{tx: tx}) })
}

// FileTx is a read transaction on a File. It implements the same Get and
// Range as ReadView, so schema's readers work on it.
type FileTx struct{ tx *bolt.Tx }

// Size is the file's size as bbolt sees it.
func (t FileTx) Size() int64 { return t.tx.Size() }

// Check runs bbolt's consistency check and returns every problem found.
func (t FileTx) Check() []error {
	var errs []error
	for err := range t.tx.Check() {
		errs = append(errs, err)
	}
	return errs
}

// Buckets returns the names of every bucket, in bbolt (byte) order.
func (t FileTx) Buckets() [][]byte {
	var names [][]byte
	_ = t.tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		names = append(names, name)
		return nil
	})
	return names
}

// Get returns the value of key in bucket. A missing bucket is empty.
func (t FileTx) Get(bucket, key []byte) ([]byte, bool) {
	return boltGet(t.tx.Bucket(bucket), key)
}

// Range calls fn for each pair in [start, end) of bucket in key order until
// fn returns false or limit pairs were visited (limit <= 0: no limit; end
// nil: no upper bound). A missing bucket is empty.
func (t FileTx) Range(bucket, start, end []byte, limit int, fn func(k, v []byte) bool) {
	mergeRange(t.tx.Bucket(bucket), nil, start, end, limit, fn)
}

// ForEach calls fn for every pair of bucket in key order and stops at the
// first error, which it returns. A missing bucket is an error, since callers
// name buckets they listed.
func (t FileTx) ForEach(bucket []byte, fn func(k, v []byte) error) error {
	b := t.tx.Bucket(bucket)
	if b == nil {
		return fmt.Errorf("%w: %q", ErrBucketNotFound, bucket)
	}
	return b.ForEach(fn)
}
