package ctl

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/internal/membership"
)

// In-process checks of `snapshot restore`; snapshot_restore_test.go
// compares it with etcdutl and starts the result under etcd and cairn.

func TestSnapshotRestoreV2StoreRoundTrip(t *testing.T) {
	var ms []*membership.Member
	for _, u := range []string{"http://127.0.0.1:12380", "http://127.0.0.1:22380", "http://127.0.0.1:32380"} {
		m := membership.NewMember("", []string{u}, "etcd-cluster-1", nil)
		ms = append(ms, m)
	}
	b, err := restoreV2Store(ms)
	if err != nil {
		t.Fatal(err)
	}
	got, removed, version, err := membership.UnmarshalV2Snapshot(b)
	if err != nil || len(got) != 3 || len(removed) != 0 || version != "" {
		t.Fatalf("members %v removed %v version %q err %v", got, removed, version, err)
	}
	for _, m := range got {
		if membership.ComputeMemberID(m.PeerURLs, "etcd-cluster-1", nil) != m.ID {
			t.Errorf("member %x: peer URLs %v", m.ID, m.PeerURLs)
		}
	}
}

func TestSnapshotRestoreErrors(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	newDB(t, db, 3)
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	good := filepath.Join(dir, "s.db")
	if err := os.WriteFile(good, append(raw, sum[:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(full, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out := func(name string) string { return filepath.Join(dir, name) }
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, ExitBadArgs, "Error: snapshot restore requires exactly one argument\n"},
		{[]string{good, "--data-dir", out("a"), "--bump-revision", "3"}, ExitBadArgs, "Error: --mark-compacted required if --revision-bump > 0\n"},
		{[]string{good, "--data-dir", full}, ExitError, `Error: data-dir "` + full + `" not empty or could not be read` + "\n"},
		{[]string{good, "--data-dir", out("b"), "--wal-dir", full}, ExitError, `Error: wal-dir "` + full + `" exists` + "\n"},
		{[]string{db, "--data-dir", out("c")}, ExitError, "Error: snapshot missing hash but --skip-hash-check=false\n"},
		{[]string{good, "--data-dir", out("d"), "--initial-cluster", "x=http://localhost:2380"}, ExitError,
			"Error: couldn't find local name \"default\" in the initial cluster configuration\n"},
		{[]string{good, "--data-dir", out("e"), "--initial-cluster", "foo"}, ExitError, "Error: URL scheme must be http, https, unix, or unixs: \n"},
	} {
		_, stderr, code := runCtl(t, nil, "", append([]string{"snapshot", "restore"}, c.args...)...)
		wantRun(t, stderr, code, c.code, c.want)
	}
	_, stderr, code := runCtl(t, nil, "", "snapshot", "restore", good, "--data-dir", out("ok"), "--bump-revision", "10", "--mark-compacted")
	if code != 0 {
		t.Fatalf("restore: %d %s", code, stderr)
	}
	ds, err := dbStatus(filepath.Join(out("ok"), "member", "snap", "db"))
	if err != nil || ds.Revision != 14 {
		t.Errorf("restored db: revision %d err %v, want 14", ds.Revision, err)
	}
}
