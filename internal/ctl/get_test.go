package ctl

import (
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestGetArgErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"get"}, ExitBadArgs, "Error: get command needs one argument as key and an optional argument as range_end\n"},
		{[]string{"get", "a", "--prefix", "--from-key"}, ExitBadArgs, "Error: `--prefix` and `--from-key` cannot be set at the same time, choose one\n"},
		{[]string{"get", "a", "b", "--prefix"}, ExitBadArgs, "Error: too many arguments, only accept one argument when `--prefix` or `--from-key` is set\n"},
		{[]string{"get", "a", "--keys-only", "--count-only"}, ExitBadArgs, "Error: `--keys-only` and `--count-only` cannot be set at the same time, choose one\n"},
		{[]string{"get", "a", "--consistency", "x"}, ExitBadFeature, "Error: unknown consistency flag \"x\"\n"},
		{[]string{"get", "a", "--order", "up"}, ExitBadFeature, "Error: bad sort order up\n"},
		{[]string{"get", "a", "--sort-by", "size"}, ExitBadFeature, "Error: bad sort target size\n"},
		{[]string{"get", "--limit", "x", "a"}, ExitError, "Error: invalid argument \"x\" for \"--limit\" flag"},
		{[]string{"get", "--bogus"}, ExitError, "Error: unknown flag: --bogus\n\n"},
	} {
		_, stderr, code := runCtl(t, nil, "", tc.args...)
		wantRun(t, stderr, code, tc.code, tc.err)
	}
}

func TestGetOp(t *testing.T) {
	cmd, o := newGetCmd()
	if err := cmd.ParseFlags([]string{"--prefix", "--rev=7", "--keys-only", "--consistency=s", "--limit=3",
		"--min-mod-rev=2", "--max-create-rev=9"}); err != nil {
		t.Fatal(err)
	}
	key, opts, err := o.op([]string{"dir/"})
	if err != nil {
		t.Fatal(err)
	}
	op := clientv3.OpGet(key, opts...)
	if string(op.KeyBytes()) != "dir/" || string(op.RangeBytes()) != "dir0" {
		t.Errorf("range [%q, %q), want [dir/, dir0)", op.KeyBytes(), op.RangeBytes())
	}
	if op.Rev() != 7 || !op.IsKeysOnly() || !op.IsSerializable() || op.MinModRev() != 2 || op.MaxCreateRev() != 9 {
		t.Errorf("options not applied: rev %d keysOnly %v serializable %v", op.Rev(), op.IsKeysOnly(), op.IsSerializable())
	}

	// An empty key with --prefix or --from-key means every key.
	for _, flag := range []string{"--prefix", "--from-key"} {
		cmd, o := newGetCmd()
		if err := cmd.ParseFlags([]string{flag}); err != nil {
			t.Fatal(err)
		}
		key, opts, err := o.op([]string{""})
		if err != nil {
			t.Fatal(err)
		}
		op := clientv3.OpGet(key, opts...)
		if string(op.KeyBytes()) != "\x00" || string(op.RangeBytes()) != "\x00" {
			t.Errorf("%s \"\": range [%q, %q), want [\\x00, \\x00)", flag, op.KeyBytes(), op.RangeBytes())
		}
	}
}
