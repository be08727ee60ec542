package ctl

import (
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestPutArgErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		stdin string
		code  int
		err   string
	}{
		{[]string{"put"}, "", ExitBadArgs, "Error: put command needs 1 argument and input from stdin or 2 arguments\n"},
		{[]string{"put", "k"}, "", ExitBadArgs, "Error: put command needs 1 argument and input from stdin or 2 arguments\n"},
		{[]string{"put", "k", "v", "--ignore-value"}, "", ExitBadArgs, "Error: put command needs only 1 argument when 'ignore-value' is set\n"},
		{[]string{"put", "k", "v", "--lease", "zz"}, "", ExitBadArgs, "Error: bad lease ID (strconv.ParseInt: parsing \"zz\": invalid syntax), expecting ID in Hex\n"},
	} {
		_, stderr, code := runCtl(t, nil, tc.stdin, tc.args...)
		wantRun(t, stderr, code, tc.code, tc.err)
	}
}

func TestPutOp(t *testing.T) {
	a := &app{stdin: strings.NewReader("from\nstdin")}
	cmd, o := newPutCmd()
	if err := cmd.ParseFlags([]string{"--lease=1f", "--prev-kv", "--ignore-lease"}); err != nil {
		t.Fatal(err)
	}
	key, value, opts, err := a.putOp(o, []string{"k"})
	if err != nil {
		t.Fatal(err)
	}
	if key != "k" || value != "from\nstdin" {
		t.Errorf("put %q=%q, want k=\"from\\nstdin\"", key, value)
	}
	op := clientv3.OpPut(key, value, opts...)
	if op.IsOptsWithPrefix() || !op.IsPut() {
		t.Errorf("unexpected op %+v", op)
	}
	// --ignore-value reads nothing from stdin.
	a = &app{stdin: strings.NewReader("unused")}
	cmd, o = newPutCmd()
	if err := cmd.ParseFlags([]string{"--ignore-value"}); err != nil {
		t.Fatal(err)
	}
	if _, value, _, err := a.putOp(o, []string{"k"}); err != nil || value != "" {
		t.Errorf("--ignore-value: value %q err %v", value, err)
	}
}
