package ctl

import (
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestDelArgErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"del"}, "Error: del command needs one argument as key and an optional argument as range_end\n"},
		{[]string{"del", "a", "b", "c"}, "Error: del command needs one argument as key and an optional argument as range_end\n"},
		{[]string{"del", "a", "--prefix", "--from-key"}, "Error: `--prefix` and `--from-key` cannot be set at the same time, choose one\n"},
		{[]string{"del", "a", "b", "--from-key"}, "Error: too many arguments, only accept one argument when `--prefix` or `--from-key` is set\n"},
	} {
		_, stderr, code := runCtl(t, nil, "", tc.args...)
		wantRun(t, stderr, code, ExitBadArgs, tc.err)
	}
}

func TestDelOp(t *testing.T) {
	cmd, o := newDelCmd()
	if err := cmd.ParseFlags([]string{"--prev-kv"}); err != nil {
		t.Fatal(err)
	}
	key, opts, err := o.op([]string{"a", "c"})
	if err != nil {
		t.Fatal(err)
	}
	op := clientv3.OpDelete(key, opts...)
	if string(op.KeyBytes()) != "a" || string(op.RangeBytes()) != "c" || !op.IsDelete() {
		t.Errorf("del range [%q, %q)", op.KeyBytes(), op.RangeBytes())
	}
}
