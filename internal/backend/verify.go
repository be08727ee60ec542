package backend

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrFileDamaged is wrapped by VerifyFile's errors.
var ErrFileDamaged = errors.New("backend: database file is damaged")

// VerifyFile checks that the file at path is a whole, consistent bbolt
// database before anyone serves from it: a snapshot's database received
// from a peer, which a dropped connection or a faulty sender may have cut
// short or garbled.
//
// bbolt trusts its file: it maps it and follows page numbers without
// bounds checks, so reading a truncated file faults (SIGBUS past the end of
// the mapping) and a garbled one trips its assertions (panics). VerifyFile
// first compares the file's size with the high-water mark its meta page
// records (truncation, without touching a data page), then reads every key
// and value of every bucket on this goroutine, turning faults and bbolt's
// page assertions into an error wrapping ErrFileDamaged. (bbolt's own
// Tx.Check walks the pages on a goroutine of its own, where a panic cannot
// be caught.) It costs one read of the file. bbolt keeps no checksums of
// data pages, so a value garbled in place is not found here; the consistent
// index and the members' hash checks are the later lines of defence.
func VerifyFile(path string) (err error) {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	f, err := OpenFile(path, 10*time.Second)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrFileDamaged, err)
	}
	defer f.Close()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrFileDamaged, r)
		}
	}()
	return f.View(func(tx FileTx) error {
		if want := tx.Size(); st.Size() < want {
			return fmt.Errorf("%w: %d bytes, its meta page needs %d (truncated)", ErrFileDamaged, st.Size(), want)
		}
		return readAll(tx.tx.Cursor(), 0)
	})
}

// maxBucketDepth bounds the recursion through nested buckets: a garbled
// page can make a bucket appear to contain itself.
const maxBucketDepth = 16

// readAll reads every key and value under c, descending into nested
// buckets, so that every reachable page is mapped and checked by bbolt.
func readAll(c *bolt.Cursor, depth int) error {
	if depth > maxBucketDepth {
		return fmt.Errorf("%w: buckets nested deeper than %d", ErrFileDamaged, maxBucketDepth)
	}
	var sum byte
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			b := c.Bucket().Bucket(k)
			if b == nil {
				return fmt.Errorf("%w: key %q has no value and is not a bucket", ErrFileDamaged, k)
			}
			if err := readAll(b.Cursor(), depth+1); err != nil {
				return err
			}
			continue
		}
		// Touch the value's last byte: an overflow value spans pages.
		if len(v) > 0 {
			sum ^= v[len(v)-1]
		}
	}
	_ = sum
	return nil
}
