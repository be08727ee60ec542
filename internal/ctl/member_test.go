package ctl

import "testing"

func TestMemberListConsistency(t *testing.T) {
	// The check comes before any connection; etcdctl names "l" whatever was given.
	_, stderr, code := runCtl(t, nil, "", "member", "list", "--consistency", "x", "--endpoints=")
	wantRun(t, stderr, code, ExitBadFeature, "Error: unknown consistency flag \"l\"\n")
	stdout, _, code := runCtl(t, nil, "", "member")
	if code != 0 || stdout[:5] != "NAME:" {
		t.Errorf("member group: code %d stdout %q", code, stdout)
	}
}
