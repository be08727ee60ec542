package mvcc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Revision is a point in the store's history: Main is the revision of a write
// transaction, Sub the index of a change inside it.
type Revision struct {
	Main, Sub int64
}

// GreaterThan reports whether r sorts after o.
func (r Revision) GreaterThan(o Revision) bool {
	if r.Main != o.Main {
		return r.Main > o.Main
	}
	return r.Sub > o.Sub
}

// Encoded sizes of a revision key in bucket `key`: main (8 bytes big-endian),
// '_', sub (8 bytes big-endian), and a trailing 't' for a tombstone.
const (
	revBytesLen       = 17
	markedRevBytesLen = 18
	markTombstone     = 't'
)

// appendRev appends the 17-byte encoding of r to dst.
func appendRev(dst []byte, r Revision) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Main))
	dst = append(dst, '_')
	return binary.BigEndian.AppendUint64(dst, uint64(r.Sub))
}

// RevBytes returns the bucket key of revision r (tombstone adds the mark).
func RevBytes(r Revision, tombstone bool) []byte {
	b := appendRev(make([]byte, 0, markedRevBytesLen), r)
	if tombstone {
		b = append(b, markTombstone)
	}
	return b
}

// ParseRevBytes decodes a bucket key.
func ParseRevBytes(b []byte) (r Revision, tombstone bool, err error) {
	if len(b) != revBytesLen && !(len(b) == markedRevBytesLen && b[revBytesLen] == markTombstone) {
		return Revision{}, false, fmt.Errorf("revision key %x: %w", b, ErrCorrupt)
	}
	r.Main = int64(binary.BigEndian.Uint64(b))
	r.Sub = int64(binary.BigEndian.Uint64(b[9:]))
	return r, len(b) == markedRevBytesLen, nil
}

// bytesToRev decodes the revision part of a bucket key of valid length.
func bytesToRev(b []byte) Revision {
	return Revision{Main: int64(binary.BigEndian.Uint64(b)), Sub: int64(binary.BigEndian.Uint64(b[9:]))}
}

func isTombstone(b []byte) bool {
	return len(b) == markedRevBytesLen && b[revBytesLen] == markTombstone
}

// Sentinel errors of the mvcc package, wrapped with %w.
var (
	// ErrCompacted: the requested revision is below the compaction revision.
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	// ErrFutureRev: the requested revision is above the current revision.
	ErrFutureRev = errors.New("mvcc: required revision is a future revision")
	// ErrCorrupt marks on-disk data that breaks the store's format or
	// agreement with the index.
	ErrCorrupt = errors.New("mvcc: corrupt data")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("mvcc: store closed")
	// errRevisionNotFound is internal to the key index.
	errRevisionNotFound = errors.New("mvcc: revision not found")
)
