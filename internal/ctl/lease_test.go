package ctl

import "testing"

// Argument errors exit 128 before any connection is made (no endpoint is
// reachable here), with etcdctl's texts.
func TestLeaseArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lease", "grant"}, "Error: lease grant command needs TTL argument\n"},
		{[]string{"lease", "grant", "1", "2"}, "Error: lease grant command needs TTL argument\n"},
		{[]string{"lease", "grant", "abc"}, "Error: bad TTL (strconv.ParseInt: parsing \"abc\": invalid syntax)\n"},
		{[]string{"lease", "revoke"}, "Error: lease revoke command needs 1 argument\n"},
		{[]string{"lease", "revoke", "xyz"}, "Error: bad lease ID arg (strconv.ParseInt: parsing \"xyz\": invalid syntax), expecting ID in Hex\n"},
		{[]string{"lease", "timetolive"}, "Error: lease timetolive command needs lease ID as argument\n"},
		{[]string{"lease", "timetolive", "--keys", "g"}, "Error: bad lease ID arg (strconv.ParseInt: parsing \"g\": invalid syntax), expecting ID in Hex\n"},
		{[]string{"lease", "keep-alive"}, "Error: lease keep-alive command needs lease ID as argument\n"},
		{[]string{"lease", "keep-alive", "--once", "1", "2"}, "Error: lease keep-alive command needs lease ID as argument\n"},
	} {
		_, stderr, code := runCtl(t, nil, "", append([]string{"--endpoints=127.0.0.1:1"}, tc.args...)...)
		wantRun(t, stderr, code, ExitBadArgs, tc.want)
	}
}
