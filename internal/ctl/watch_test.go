package ctl

import (
	"fmt"
	"testing"
)

// parseWatchArgs splits the key, range end and command as etcdctl does,
// from the raw command line (cobra drops the `--`).
func TestParseWatchArgs(t *testing.T) {
	for _, tc := range []struct {
		raw, cobra     []string
		envKey, envEnd string
		interactive    bool
		watch, exec    []string
		err            error
	}{
		{raw: []string{"--endpoints=x", "watch", "foo"}, cobra: []string{"foo"}, watch: []string{"foo"}},
		{raw: []string{"watch", "foo", "bar"}, cobra: []string{"foo", "bar"}, watch: []string{"foo", "bar"}},
		{raw: []string{"watch", "foo", "--rev", "1", "--", "echo", "hi"}, cobra: []string{"foo", "echo", "hi"},
			watch: []string{"foo"}, exec: []string{"echo", "hi"}},
		{raw: []string{"watch", "--rev", "1", "--", "echo", "hi"}, cobra: []string{"echo", "hi"}, envKey: "k", envEnd: "l",
			watch: []string{"k", "l"}, exec: []string{"echo", "hi"}},
		{raw: []string{"watch", "foo", "--"}, cobra: []string{"foo"}, err: errBadArgsNumSeparator},
		{raw: []string{"watch"}, cobra: nil, err: errBadArgsNum},
		{raw: []string{"watch", "foo"}, cobra: []string{"foo"}, envKey: "k", err: errBadArgsNumConflictEnv},
		{raw: []string{"watch", "foo", "--", "echo"}, cobra: []string{"foo", "echo"}, envKey: "k", err: errBadArgsNumConflictEnv},
		{cobra: []string{"watch", "foo", "--prefix"}, interactive: true, watch: []string{"foo"}},
		{cobra: []string{"watch", "foo", "--", "echo", "x"}, interactive: true, watch: []string{"foo"}, exec: []string{"echo", "x"}},
		{cobra: []string{"watch", "foo", "--"}, interactive: true, err: errBadArgsNumSeparator},
		{cobra: []string{"get", "foo"}, interactive: true, err: errBadArgsInteractiveWatch},
		{cobra: []string{"watch", "--rev", "2"}, interactive: true, envKey: "k", watch: []string{"k"}},
		{cobra: []string{"watch", "a"}, interactive: true, envKey: "k", err: errBadArgsNumConflictEnv},
	} {
		var o *watchOptions
		if tc.interactive {
			o = &watchOptions{}
		}
		w, e, err := parseWatchArgs(append([]string{cliName}, tc.raw...), tc.cobra, tc.envKey, tc.envEnd, o)
		if fmt.Sprint(w, e, err) != fmt.Sprint(tc.watch, tc.exec, tc.err) {
			t.Errorf("%q / %q (env %q %q): %q %q %v, want %q %q %v", tc.raw, tc.cobra, tc.envKey, tc.envEnd,
				w, e, err, tc.watch, tc.exec, tc.err)
		}
	}
}

// The argument errors exit with etcdctl's code and message before any
// connection is tried.
func TestWatchArgErrors(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		args []string
		code int
		err  string
	}{
		{nil, []string{"watch"}, ExitBadArgs, "Error: bad number of arguments\n"},
		{nil, []string{"--endpoints=127.0.0.1:1", "watch", "a", "b", "--prefix"}, ExitBadArgs,
			"Error: `range_end` and `--prefix` are mutually exclusive\n"},
		{[]string{"ETCDCTL_WATCH_RANGE_END=b"}, []string{"watch", "a"}, ExitBadArgs,
			"Error: ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=\"b\"\n"},
		{nil, []string{"--endpoints=127.0.0.1:1", "watch", "-i"}, ExitInvalidInput,
			"Invalid command foo (only support watch)\nError: error reading watch request line: EOF\n"},
	} {
		_, stderr, code := runCtl(t, tc.env, "foo\n", tc.args...)
		wantRun(t, stderr, code, tc.code, tc.err)
	}
}
