package ctl

import "testing"

// The elect command against servers is in the differential test
// (compat_lock_test.go); these are its argument errors.
func TestElectArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"elect"}, "Error: elect takes one election name argument and an optional proposal argument\n"},
		{[]string{"elect", "a", "b", "c"}, "Error: elect takes one election name argument and an optional proposal argument\n"},
		{[]string{"--endpoints=127.0.0.1:1", "elect", "a"}, "Error: no proposal argument but -l not set\n"},
		{[]string{"--endpoints=127.0.0.1:1", "elect", "-l", "a", "b"}, "Error: proposal given but -l is set\n"},
	} {
		_, stderr, code := runCtl(t, nil, "", tc.args...)
		wantRun(t, stderr, code, ExitBadArgs, tc.want)
	}
}
