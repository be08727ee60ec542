package ctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSnapshotStatus(t *testing.T) {
	db := filepath.Join(t.TempDir(), "db")
	newDB(t, db, 12) // keys k0..k9, revision 13
	ds, err := dbStatus(db)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Revision != 13 || ds.TotalKey != 10 || ds.Version != "3.6.0" || ds.TotalSize == 0 {
		t.Errorf("status %+v", ds)
	}
	stdout, _, code := runCtl(t, nil, "", "snapshot", "status", db, "-w", "json")
	if code != 0 || !strings.Contains(stdout, `"revision":13,"totalKey":10,`) {
		t.Errorf("json: code %d %q", code, stdout)
	}
	_, stderr, code := runCtl(t, nil, "", "snapshot", "status", db, "-w", "protobuf")
	wantRun(t, stderr, code, ExitBadFeature, "Error: protobuf not supported as output format\n")
	_, stderr, code = runCtl(t, nil, "", "snapshot", "status")
	wantRun(t, stderr, code, ExitBadArgs, "Error: snapshot status requires exactly one argument\n")
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runCtl(t, nil, "", "snapshot", "status", bad)
	wantRun(t, stderr, code, ExitError, "Error: invalid database\n")
}

func TestSnapshotSaveArgs(t *testing.T) {
	_, stderr, code := runCtl(t, nil, "", "snapshot", "save")
	wantRun(t, stderr, code, ExitBadArgs, "Error: snapshot save expects one argument <filename>\n")
	_, stderr, code = runCtl(t, nil, "", "--endpoints=a:1,b:2", "snapshot", "save", filepath.Join(t.TempDir(), "x"))
	wantRun(t, stderr, code, ExitInterrupted, "Error: snapshot must be requested to one selected node, not multiple [a:1 b:2]\n")
	_, stderr, code = runCtl(t, nil, "", "snapshot", "save", "/nonexistent/x.db")
	wantRun(t, stderr, code, ExitInterrupted, "Error: could not open /nonexistent/x.db.part (open /nonexistent/x.db.part: no such file or directory)\n")
}

func TestStorageVersion(t *testing.T) {
	for in, want := range map[string]string{"3.6.0": "3.6.0", "": "", "3.6": "", "x.y.z": "", "3.6.0-alpha": ""} {
		if got := storageVersion([]byte(in)); got != want {
			t.Errorf("storageVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
