package ctl

import (
	"bufio"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestParseCompare(t *testing.T) {
	for _, tc := range []struct {
		line   string
		target pb.Compare_CompareTarget
		result pb.Compare_CompareResult
		key    string
		err    string
	}{
		{line: `mod("k") > "3"`, target: pb.Compare_MOD, result: pb.Compare_GREATER, key: "k"},
		{line: `m("k") < "3"`, target: pb.Compare_MOD, result: pb.Compare_LESS, key: "k"},
		{line: `ver("k") = "1"`, target: pb.Compare_VERSION, result: pb.Compare_EQUAL, key: "k"},
		{line: `c("k") != "1"`, target: pb.Compare_CREATE, result: pb.Compare_NOT_EQUAL, key: "k"},
		{line: `value("a b") = "x y"`, target: pb.Compare_VALUE, result: pb.Compare_EQUAL, key: "a b"},
		{line: `lease("k") = "1f"`, target: pb.Compare_LEASE, result: pb.Compare_EQUAL, key: "k"},
		{line: `nothing`, err: "malformed comparison: nothing"},
		{line: `bogus("b") = "4"`, err: `malformed comparison: bogus("b") = "4" (unknown target bogus)`},
		{line: `value("b") =`, err: `malformed comparison: value("b") =; got value("b") = ""`},
		{line: `value(b) = "2"`, err: `malformed comparison: value(b) = "2"; got value("")  ""`},
		{line: `version("b") = "x"`, err: `invalid txn compare request: version("b") = "x"`},
	} {
		cmp, err := parseCompare(tc.line)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: error %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if cmp.Target != tc.target || cmp.Result != tc.result || string(cmp.Key) != tc.key {
			t.Errorf("%s: got %v %v %q", tc.line, cmp.Target, cmp.Result, cmp.Key)
		}
	}
}

func TestParseRequest(t *testing.T) {
	a := &app{stdin: strings.NewReader(""), stdout: &strings.Builder{}, stderr: &strings.Builder{}}
	op, err := a.parseRequest(`put 'a key' "a\tvalue" --prev-kv`)
	if err != nil {
		t.Fatal(err)
	}
	if !op.IsPut() || string(op.KeyBytes()) != "a key" || string(op.ValueBytes()) != "a\tvalue" {
		t.Errorf("put parsed as %q=%q", op.KeyBytes(), op.ValueBytes())
	}
	op, err = a.parseRequest("get k --prefix")
	if err != nil || !op.IsGet() || string(op.RangeBytes()) != "l" {
		t.Errorf("get --prefix: %v %v", op, err)
	}
	for line, want := range map[string]string{
		"get":                "invalid txn compare request: get",
		"foo a":              "invalid txn request: foo a",
		"get a --bogus":      "invalid txn request: get a --bogus",
		"put a b --lease=zz": `bad lease ID (strconv.ParseInt: parsing "zz": invalid syntax), expecting ID in Hex`,
	} {
		if _, err := a.parseRequest(line); err == nil || err.Error() != want {
			t.Errorf("%q: error %v, want %q", line, err, want)
		}
	}
}

func TestReadLinesNeedsBlankLine(t *testing.T) {
	var got []string
	err := readLines(bufio.NewReader(strings.NewReader("a\n  b  \n\nc\n")), func(l string) error {
		got = append(got, l)
		return nil
	})
	if err != nil || strings.Join(got, ",") != "a,b" {
		t.Errorf("got %q, %v", got, err)
	}
	err = readLines(bufio.NewReader(strings.NewReader("a\n")), func(string) error { return nil })
	if err == nil || err.Error() != "EOF" || exitCode(err) != ExitInvalidInput {
		t.Errorf("unterminated section: %v", err)
	}
}

func TestTxnArgs(t *testing.T) {
	_, stderr, code := runCtl(t, nil, "", "txn", "extra")
	wantRun(t, stderr, code, ExitBadArgs, "Error: txn command does not accept argument\n")
}

func TestArgify(t *testing.T) {
	got, err := argify(`put 'single q' "double \"q\"" plain --flag=x`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"put", "single q", `double "q"`, "plain", "--flag=x"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("argify = %q, want %q", got, want)
	}
}
