//go:build cairn_failpoints

package wal

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap/zaptest"
)

// withDisk runs f with the WAL's file layer replaced by d.
func withDisk(t *testing.T, d fileLayer) {
	old := disk
	disk = d
	t.Cleanup(func() { disk = old })
}

// readBack reads the WAL in dir as another process would after a crash:
// read-only, from the files.
func readBack(t *testing.T, dir string) (raftpb.HardState, []raftpb.Entry) {
	t.Helper()
	r, err := OpenForRead(zaptest.NewLogger(t), dir, Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, st, es, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return st, es
}

// TestVolatileDiskLosesUnsynced: what Save synced is in the file; a
// commit-only hard state (raft does not require a sync) stays in memory.
func TestVolatileDiskLosesUnsynced(t *testing.T) {
	withDisk(t, &volatileDisk{pending: map[*os.File][]pendingWrite{}})
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, []byte("md"))
	defer w.Close()
	if err := w.Save(raftpb.HardState{Term: 1, Commit: 1}, ents(1, 1, 3)); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(raftpb.HardState{Term: 1, Commit: 3}, nil); err != nil { // no sync needed
		t.Fatal(err)
	}
	st, es := readBack(t, dir)
	if len(es) != 3 || st.Commit != 1 {
		t.Fatalf("after a crash: commit %d, %d entries; want commit 1 (the unsynced 3 lost), 3 entries", st.Commit, len(es))
	}
	if err := w.Save(raftpb.HardState{Term: 1, Commit: 3}, ents(1, 4, 4)); err != nil { // syncs everything
		t.Fatal(err)
	}
	if st, es := readBack(t, dir); len(es) != 4 || st.Commit != 3 {
		t.Fatalf("after a sync: commit %d, %d entries; want 3, 4", st.Commit, len(es))
	}
}

// TestFaultyDisk: a full disk fails the Save with ENOSPC and leaves no
// partial record; an fsync error fails it with EIO; later appends are
// refused; the file still reads back.
func TestFaultyDisk(t *testing.T) {
	for _, c := range []struct {
		d    faultyDisk
		want error
	}{{faultyDisk{full: true}, syscall.ENOSPC}, {faultyDisk{syncErr: true}, syscall.EIO}} {
		dir := filepath.Join(t.TempDir(), "wal")
		w := mustCreate(t, dir, []byte("md"))
		if err := w.Save(raftpb.HardState{Term: 1, Commit: 1}, ents(1, 1, 2)); err != nil {
			t.Fatal(err)
		}
		withDisk(t, c.d)
		err := w.Save(raftpb.HardState{Term: 1, Commit: 2}, ents(1, 3, 4))
		if !errors.Is(err, c.want) {
			t.Fatalf("%+v: Save = %v, want %v", c.d, err, c.want)
		}
		if err := w.Save(raftpb.HardState{Term: 1, Commit: 2}, ents(1, 5, 5)); !errors.Is(err, ErrFailed) {
			t.Fatalf("%+v: a Save after the failure = %v, want ErrFailed", c.d, err)
		}
		w.Close()
		disk = osDisk{}
		_, es := readBack(t, dir)
		if c.d.full && len(es) != 2 {
			t.Fatalf("disk full: %d entries read back, want the 2 saved before", len(es))
		}
		// Reopened for appending (a restart), the WAL takes writes again.
		w2, _, _, got := mustReadAll(t, dir, Snapshot{})
		if err := w2.Save(raftpb.HardState{Term: 1, Commit: 2}, ents(1, uint64(len(got))+1, uint64(len(got))+1)); err != nil {
			t.Fatalf("%+v: Save after a restart: %v", c.d, err)
		}
		w2.Close()
	}
}
