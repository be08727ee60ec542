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
	const run = "Run 'etcdctl --help' for usage.\n"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lsx"}, "Error: unknown command \"lsx\" for \"etcdctl\"\n" + run}, // "ls" is v2's (apiv2.go)
		{[]string{"gett"}, "Error: unknown command \"gett\" for \"etcdctl\"\n\nDid you mean this?\n\tget\n\n" + run},
		// etcdctl's commands count, even those cairnctl lacks, in etcdctl's order
		{[]string{"putt", "a"}, "Error: unknown command \"putt\" for \"etcdctl\"\n\nDid you mean this?\n\tput\n\tauth\n\n" + run},
		{[]string{"--endpoints", "x", "leasee"}, "Error: unknown command \"leasee\" for \"etcdctl\"\n\nDid you mean this?\n\tlease\n\n" + run},
		// a prefix unique among cairnctl's commands but not etcdctl's
		{[]string{"a"}, "Error: unknown command \"a\" for \"etcdctl\"\n\nDid you mean this?\n\talarm\n\tauth\n\n" + run},
	} {
		stdout, stderr, code := runCtl(t, nil, "", tc.args...)
		if code != 1 || stderr != tc.want || stdout != "" {
			t.Errorf("%q: code %d stdout %q stderr %q, want code 1 stderr %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
}
