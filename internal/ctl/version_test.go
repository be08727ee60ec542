package ctl

import "testing"

func TestVersion(t *testing.T) {
	// version reads no environment: a conflicting variable is not fatal.
	stdout, stderr, code := runCtl(t, []string{"ETCDCTL_DIAL_TIMEOUT="}, "", "version", "--dial-timeout=1s", "-w", "json")
	if code != 0 || stderr != "" || stdout != "etcdctl version: 3.6.16\nAPI version: 3.6\n" {
		t.Errorf("version: code %d stdout %q stderr %q", code, stdout, stderr)
	}
}
