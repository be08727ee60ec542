package ctl

import "testing"

// The lock command against servers is in the differential test
// (compat_lock_test.go); these are its argument errors.
func TestLockArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"lock"}, ExitBadArgs, "Error: lock takes a lock name argument and an optional command to execute\n"},
		{[]string{"lock", "--ttl", "x", "l"}, ExitError, `invalid argument "x" for "--ttl" flag`},
	} {
		_, stderr, code := runCtl(t, nil, "", tc.args...)
		wantRun(t, stderr, code, tc.code, tc.want)
	}
}

func TestExitStatus(t *testing.T) {
	for in, want := range map[int]int{0: 0, 3: 3, -1: 255, 255: 255} {
		if got := exitStatus(in); got != want {
			t.Errorf("exitStatus(%d) = %d, want %d", in, got, want)
		}
	}
}
