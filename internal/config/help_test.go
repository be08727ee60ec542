package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestHelpGolden pins the --help listing.
func TestHelpGolden(t *testing.T) {
	var out, errb bytes.Buffer
	_, err := Load([]string{"cairn", "--help"}, nil, &out, &errb)
	assertExit(t, err, 0)
	if errb.String() != usageLine+"\n" {
		t.Errorf("stderr = %q, want the usage line", errb.String())
	}
	golden := filepath.Join("testdata", "help.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("help differs from %s; rerun with -update and review the diff", golden)
	}
	if !strings.HasPrefix(out.String(), "\nMember:\n  --name 'default'\n") {
		t.Errorf("help starts %q", out.String()[:40])
	}
}
