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

// Arguments and peer URLs are checked before any connection, with
// etcdctl 3.6.16's messages and exit codes.
func TestMemberChangeArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"member", "add"}, ExitBadArgs, "Error: member name not provided\n"},
		{[]string{"member", "add", "a"}, ExitBadArgs, "Error: member peer urls not provided\n"},
		{[]string{"member", "add", "a", "b", "c"}, ExitBadArgs, "Error: too many arguments\n"},
		{[]string{"member", "add", "a", "http://x", "b", "httpy"}, ExitBadArgs,
			"Error: too many arguments, did you mean --peer-urls=http://x, did you mean --peer-urls=httpy\n"},
		{[]string{"member", "add", "a", "--peer-urls", "foo"}, ExitError, "Error: URL scheme must be http, https, unix, or unixs: foo\n"},
		{[]string{"member", "add", "a", "--peer-urls", "http://127.0.0.1:1/p"}, ExitError, "Error: URL must not contain a path: http://127.0.0.1:1/p\n"},
		{[]string{"member", "add", "a", "--peer-urls", "http://127.0.0.1:x"}, ExitError,
			"Error: parse \"http://127.0.0.1:x\": invalid port \":x\" after host\n"},
		{[]string{"member", "remove"}, ExitBadArgs, "Error: member ID is not provided\n"},
		{[]string{"member", "promote", "1", "2"}, ExitBadArgs, "Error: member ID is not provided\n"},
		{[]string{"member", "remove", "zz"}, ExitBadArgs,
			"Error: bad member ID arg (strconv.ParseUint: parsing \"zz\": invalid syntax), expecting ID in Hex\n"},
		{[]string{"member", "update", "1"}, ExitBadArgs, "Error: member peer urls not provided\n"},
		{[]string{"member", "update", "1", "--peer-urls", "http://a:1,ftp://b:2"}, ExitError,
			"Error: URL scheme must be http, https, unix, or unixs: ftp://b:2\n"},
	} {
		// A dead endpoint: none of these may get as far as dialling.
		_, stderr, code := runCtl(t, nil, "", append(tc.args, "--endpoints=127.0.0.1:1", "--dial-timeout=100ms")...)
		if code != tc.code || stderr != tc.want {
			t.Errorf("%q: exit %d %q, want %d %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}
