package ctl

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestHashKV(t *testing.T) {
	db := filepath.Join(t.TempDir(), "db")
	newDB(t, db, 3)
	stdout, _, code := runCtl(t, nil, "", "hashkv", db, "-w", "json")
	if code != 0 || !strings.Contains(stdout, `"hashRevision":4,"compactRevision":-1}`) {
		t.Errorf("hashkv: code %d %q", code, stdout)
	}
	_, stderr, code := runCtl(t, nil, "", "hashkv", db, "--rev", "100")
	wantRun(t, stderr, code, ExitError, "Error: mvcc: required revision is a future revision\n")
	_, stderr, code = runCtl(t, nil, "", "hashkv", filepath.Join(t.TempDir(), "none"))
	wantRun(t, stderr, code, ExitError, "Error: stat ")
}
