package ctl

import (
	"strings"
	"testing"
)

func TestV2CommandWord(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cluster-health"}, "cluster-health"},
		{[]string{"-C", "http://localhost:4001", "cluster-health"}, "cluster-health"},
		{[]string{"--endpoints=http://x:1", "-o", "json", "ls", "/"}, "ls"},
		{[]string{"--debug", "--no-sync", "set", "/a", "b"}, "set"},
		{[]string{"--write-out", "json", "get", "a"}, "json"}, // a v3 flag's value is not skipped
		{[]string{"--", "set"}, ""},
		{nil, ""},
	} {
		if got := v2CommandWord(tc.args); got != tc.want {
			t.Errorf("v2CommandWord(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestAPIDispatch: ETCDCTL_API=2 runs the v2 command line; without it a
// v2-only command runs on v2 with a notice, and a v3 command stays v3.
func TestAPIDispatch(t *testing.T) {
	out, _, code := runCtl(t, []string{"ETCDCTL_API=2"}, "", "--version")
	if code != 0 || out != "etcdctl version: 3.4.23\nAPI version: 2\n" {
		t.Errorf("ETCDCTL_API=2 --version: %d %q", code, out)
	}
	// --endpoints points nowhere: the command fails at connecting, after
	// having been taken as v2 (the v2 client's error text, exit 2).
	_, errOut, code := runCtl(t, nil, "", "--endpoints", "http://127.0.0.1:1", "mk", "/a", "b")
	wantRun(t, errOut, code, 2, `cairnctl: ETCDCTL_API is not set: running "mk" with the v2 API`)
	wantRun(t, errOut, code, 2, "client: etcd cluster is unavailable or misconfigured")
	out, errOut, code = runCtl(t, nil, "", "version")
	if code != 0 || !strings.Contains(out, "etcdctl version: 3.6.16") || errOut != "" {
		t.Errorf("version without ETCDCTL_API: %d %q %q", code, out, errOut)
	}
	_, errOut, code = runCtl(t, []string{"ETCDCTL_API=2"}, "", "set")
	wantRun(t, errOut, code, 1, "Error:  key required\n")
	if strings.Contains(errOut, "ETCDCTL_API is not set") {
		t.Errorf("notice printed with ETCDCTL_API=2: %q", errOut)
	}
}
