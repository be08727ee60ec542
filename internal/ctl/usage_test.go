package ctl

import (
	"strings"
	"testing"
)

func TestUsageLayout(t *testing.T) {
	stdout, stderr, code := runCtl(t, nil, "", "compaction", "--help")
	want := "NAME:\n" +
		"  compaction - Compacts the event history in etcd\n\n" +
		"USAGE:\n" +
		"  etcdctl compaction [options] <revision> [flags]\n\n" +
		"OPTIONS:\n" +
		"  -h, --help[=false]\t\thelp for compaction\n" +
		"      --physical[=false]\t'true' to wait for compaction to physically remove all old revisions\n\n" +
		"GLOBAL OPTIONS:\n"
	if code != 0 || stderr != "" || !strings.HasPrefix(stdout, want) {
		t.Errorf("help: code %d stderr %q\n%q", code, stderr, stdout)
	}
	if !strings.Contains(stdout, "  -w, --write-out=\"simple\"\t\t\tset the output format") {
		t.Errorf("global flags missing or misaligned:\n%s", stdout)
	}
}

func TestUnknownFlagPrintsUsage(t *testing.T) {
	stdout, stderr, code := runCtl(t, nil, "", "compaction", "--bogus")
	if code != 1 || stderr != "Error: unknown flag: --bogus\n\n" || !strings.HasPrefix(stdout, "NAME:\n  compaction") {
		t.Errorf("code %d stderr %q stdout %q", code, stderr, stdout)
	}
}

func TestUnknownCommand(t *testing.T) {
	_, stderr, code := runCtl(t, nil, "", "ls")
	if code != 1 || stderr != "Error: unknown command \"ls\" for \"etcdctl\"\nRun 'etcdctl --help' for usage.\n" {
		t.Errorf("code %d stderr %q", code, stderr)
	}
}
