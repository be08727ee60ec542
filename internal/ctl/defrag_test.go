package ctl

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/mvcc"
)

// newDB writes a member db with n puts of key k<i> at path.
func newDB(t *testing.T, path string, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := backend.Open(backend.DefaultConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	st, err := mvcc.New(b, mvcc.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		w := st.Write()
		if _, err := w.Put([]byte{'k', byte('0' + i%10)}, make([]byte, 1000), 0); err != nil {
			t.Fatal(err)
		}
		if err := w.End(); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDefragDataDir(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "member", "snap", "db")
	newDB(t, db, 50)
	before, err := dbStatus(db)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCtl(t, nil, "", "defrag", "--data-dir", dir)
	if code != 0 || stdout != "" {
		t.Fatalf("defrag: code %d stdout %q stderr %q", code, stdout, stderr)
	}
	after, err := dbStatus(db)
	if err != nil {
		t.Fatal(err)
	}
	if after.Hash != before.Hash || after.Revision != before.Revision || after.TotalKey != before.TotalKey {
		t.Errorf("defrag changed the content: %+v -> %+v", before, after)
	}
	_, stderr, code = runCtl(t, nil, "", "defrag", "--data-dir", filepath.Join(dir, "none"))
	wantRun(t, stderr, code, ExitError, "Error: Failed to defragment etcd data["+filepath.Join(dir, "none")+"] (stat ")
}
