//go:build cairn_failpoints

package wal

import (
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/cairnkv/cairn/internal/failpoint"
)

// The test-only disk faults of a cairn_failpoints build, chosen by
// CAIRN_TEST_DISK (internal/failpoint). Only the WAL's own file writes go
// through them: bbolt opens and writes its file itself (its OpenFile hook
// returns an *os.File), so the backend is covered by crash points instead.
func init() {
	switch failpoint.Disk() {
	case failpoint.DiskLoseUnsynced:
		disk = &volatileDisk{pending: map[*os.File][]pendingWrite{}}
	case failpoint.DiskFsyncError:
		disk = faultyDisk{syncErr: true}
	case failpoint.DiskFull:
		disk = faultyDisk{full: true}
	}
}

// volatileDisk holds every write in process memory until the file is
// fdatasynced, so a SIGKILL loses exactly what was written and not
// synced, as a power loss does (the page cache would otherwise keep it).
// A truncation writes the held writes first (the WAL truncates only right
// before a sync or after a failed write). With --unsafe-no-fsync nothing
// would ever reach the file: do not combine the two.
type volatileDisk struct {
	mu      sync.Mutex
	pending map[*os.File][]pendingWrite
}

type pendingWrite struct {
	off int64
	b   []byte
}

func (d *volatileDisk) WriteAt(f *os.File, b []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending[f] = append(d.pending[f], pendingWrite{off: off, b: append([]byte(nil), b...)})
	return len(b), nil
}

// flush writes f's held writes, in order. Caller holds d.mu.
func (d *volatileDisk) flush(f *os.File) error {
	for _, w := range d.pending[f] {
		if _, err := f.WriteAt(w.b, w.off); err != nil {
			return err
		}
	}
	delete(d.pending, f)
	return nil
}

func (d *volatileDisk) Truncate(f *os.File, size int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.flush(f); err != nil {
		return err
	}
	return f.Truncate(size)
}

func (d *volatileDisk) Fdatasync(f *os.File) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.flush(f); err != nil {
		return err
	}
	return osDisk{}.Fdatasync(f)
}

// faultyDisk, once the faults are armed (failpoint.Armed), fails every
// fdatasync with EIO (syncErr) or writes half of every write and fails it
// with ENOSPC (full).
type faultyDisk struct {
	syncErr, full bool
}

func (d faultyDisk) WriteAt(f *os.File, b []byte, off int64) (int, error) {
	if d.full && failpoint.Armed() {
		n, err := f.WriteAt(b[:len(b)/2], off)
		if err != nil {
			return n, err
		}
		return n, fmt.Errorf("test disk full: %w", syscall.ENOSPC)
	}
	return f.WriteAt(b, off)
}

func (d faultyDisk) Truncate(f *os.File, size int64) error { return f.Truncate(size) }

func (d faultyDisk) Fdatasync(f *os.File) error {
	if d.syncErr && failpoint.Armed() {
		return fmt.Errorf("test fsync error: %w", syscall.EIO)
	}
	return osDisk{}.Fdatasync(f)
}
