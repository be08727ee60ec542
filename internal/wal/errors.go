package wal

import (
	"errors"
	"fmt"
	"io"
)

// The sentinel errors of package wal. Every error returned by this package
// wraps one of these (or an I/O error from the operating system) with a short
// lowercase operation, so callers test them with errors.Is.
var (
	// ErrExist is returned by Create when the directory already holds a WAL.
	ErrExist = errors.New("wal: wal already exists")
	// ErrFileNotFound is returned when the directory holds no segment file, or
	// none whose first index is at or below the requested snapshot index.
	ErrFileNotFound = errors.New("wal: file not found")
	// ErrBadSequence is returned when the segments to read do not have
	// consecutive sequence numbers.
	ErrBadSequence = errors.New("wal: file sequence numbers do not increase continuously")
	// ErrMetadataConflict is returned when two segments carry different metadata.
	ErrMetadataConflict = errors.New("wal: conflicting metadata found")
	// ErrCRCMismatch is returned (inside a *CorruptionError) when a record's
	// checksum does not continue the CRC chain.
	ErrCRCMismatch = errors.New("wal: crc mismatch")
	// ErrBadRecord is returned (inside a *CorruptionError) for a record that is
	// not a valid walpb.Record, has an unknown type, or carries an undecodable
	// payload.
	ErrBadRecord = errors.New("wal: malformed record")
	// ErrTornWrite is returned when the last segment ends in a partially
	// written record (a write cut short by a crash). It wraps
	// io.ErrUnexpectedEOF, as etcd's does; Repair removes the torn record.
	ErrTornWrite = fmt.Errorf("wal: torn write at the tail of the last segment (%w)", io.ErrUnexpectedEOF)
	// ErrSnapshotMismatch is returned when the WAL holds a snapshot record at
	// the requested index with a different term.
	ErrSnapshotMismatch = errors.New("wal: snapshot mismatch")
	// ErrSnapshotNotFound is returned when the WAL holds no snapshot record
	// matching the requested snapshot.
	ErrSnapshotNotFound = errors.New("wal: snapshot not found")
	// ErrSnapshotNoConfState is returned by SaveSnapshot for a non-initial
	// snapshot without a ConfState (etcd >= 3.5 requires one).
	ErrSnapshotNoConfState = errors.New("wal: saved (not-initial) snapshot is missing ConfState")
	// ErrSliceOutOfRange is returned by ReadAll when an entry's index leaves a
	// gap after the entries read so far.
	ErrSliceOutOfRange = errors.New("wal: slice bounds out of range")
	// ErrDecoderNotFound is returned by ReadAll when called a second time, or
	// on a WAL returned by Create.
	ErrDecoderNotFound = errors.New("wal: decoder not found")
	// ErrNotWritable is returned by the append methods of a WAL opened with
	// OpenForRead or not yet read out with ReadAll.
	ErrNotWritable = errors.New("wal: not open for appending")
	// ErrFailed is returned by every append after a write, sync or segment cut
	// failed: the WAL refuses further appends, and the process must reopen it
	// (repairing a torn tail) to continue.
	ErrFailed = errors.New("wal: refusing appends after an earlier write failure")
	// ErrClosed is returned by operations on a closed WAL.
	ErrClosed = errors.New("wal: closed")
)

// CorruptionError marks a WAL segment whose bytes are not a valid record
// stream: a CRC mismatch or malformed record anywhere but a torn tail, or a
// short segment that is not the last one. Such a WAL is not repaired
// automatically; the operator has to act, and the error names the file.
type CorruptionError struct {
	Path   string // the segment file
	Offset int64  // byte offset of the bad record's frame in the file
	Err    error  // ErrCRCMismatch, ErrBadRecord, ErrMetadataConflict or a detail wrapping one
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal: corrupt segment %s at offset %d: %v", e.Path, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

// IsCorruption reports whether err marks a corrupt WAL (as opposed to an I/O
// error or a repairable torn tail).
func IsCorruption(err error) bool {
	var ce *CorruptionError
	return errors.As(err, &ce)
}
