package wal

import (
	"os"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
)

// fileLayer is how the WAL writes, truncates and fdatasyncs its segment
// files. A normal build uses the operating system directly (osDisk); a
// binary built with the cairn_failpoints tag may put a test-only layer in
// between that simulates a power loss, fsync errors or a full disk
// (disk_failpoints.go; docs/robustness.md). Reads, renames, preallocation
// and directory fsyncs always go to the operating system.
type fileLayer interface {
	WriteAt(f *os.File, b []byte, off int64) (int, error)
	Truncate(f *os.File, size int64) error
	Fdatasync(f *os.File) error
}

// disk is the WAL's file layer, chosen once at start.
var disk fileLayer = osDisk{}

// osDisk is the operating system.
type osDisk struct{}

func (osDisk) WriteAt(f *os.File, b []byte, off int64) (int, error) { return f.WriteAt(b, off) }
func (osDisk) Truncate(f *os.File, size int64) error                { return f.Truncate(size) }
func (osDisk) Fdatasync(f *os.File) error                           { return fileutil.Fdatasync(f) }
