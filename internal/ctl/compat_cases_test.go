package ctl_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// compatCase is one command line run by both binaries. "{ep}" in args or
// env becomes each side's server endpoint; unless noEP is set,
// --endpoints={ep} is prepended to args.
type compatCase struct {
	name  string
	args  []string
	env   []string
	stdin string
	noEP  bool
	// util runs etcdutl as the reference (the offline commands); args may
	// then name files under "{ref}", the reference side's directory, so
	// both binaries read the same file.
	util bool
	// copy, when set, copies {ref}/copy[0] to {tmp}/copy[1] on each side
	// first (for commands that rewrite their file).
	copy [2]string
	// alignSecond starts the case on a fresh second, so that both sides
	// run it within the same second (member add: a runtime member's ID is
	// derived from the time).
	alignSecond bool
}

func c(args ...string) compatCase { return compatCase{args: args} }

func (k compatCase) in(stdin string) compatCase    { k.stdin = stdin; return k }
func (k compatCase) with(env ...string) compatCase { k.env = env; return k }
func (k compatCase) bare() compatCase              { k.noEP = true; return k }

var formats = []string{"simple", "json", "fields", "table", "protobuf"}

// inFormats repeats a command line once per output format.
func inFormats(args ...string) []compatCase {
	var out []compatCase
	for _, f := range formats {
		out = append(out, c(append(append([]string{}, args...), "-w", f)...))
	}
	return out
}

const dead = "--endpoints=127.0.0.1:1"

// The cases run in this order, against servers holding seedData. Writes
// come after reads; both servers see the same writes, so revisions agree.
func compatCases() []compatCase {
	var cs []compatCase
	add := func(more ...compatCase) { cs = append(cs, more...) }

	// global behaviour
	add(c("version").bare(), c("version", "-w", "json").bare(), c("ver").bare(), c("version", "extra").bare(),
		c("--debug", "version").bare(), c("version", "--dial-timeout", "1s").bare().with("ETCDCTL_DIAL_TIMEOUT="),
		c("version").bare().with("ETCDCTL_FOO=1"))
	// unknown commands: cobra's "Did you mean this?" from etcdctl's command
	// list, including commands cairnctl lacks and prefixes etcdctl finds
	// ambiguous
	add(c("gett").bare(), c("gett", "foo").bare(), c("leasee").bare(), c("putt", "a", "b").bare(), c("a").bare(),
		c("-w", "json", "watchh").bare(), c("--endpoints", "x", "memberr", "list").bare())
	// "ls" without ETCDCTL_API is cairnctl's v2 ls (docs/operations.md); with 3 it is unknown
	add(c("ls").bare().with("ETCDCTL_API=3"), c("get", "--bogus"), c("--bogus", "get", "foo"), c("get", "foo", "-w"),
		c("--dial-timeout=xx", "get", "foo"), c("get", "--limit", "x", "a"), c("-w", "yaml", "get", "foo"),
		c("get", "foo", "--write-out=yaml"))
	add(c("get", "foo").with("ETCDCTL_FOO=1", "ETCDCTL_API=3", "ETCDCTL_LIMIT=1"),
		c("get", "foo", "--dial-timeout", "3s").with("ETCDCTL_DIAL_TIMEOUT="),
		c("get", "foo").with("ETCDCTL_ENDPOINTS={ep}", "ETCDCTL_X=1"),
		c("get", "foo").with("ETCDCTL_A=1", "ETCDCTL_COMMAND_TIMEOUT=", "ETCDCTL_ENDPOINTS={ep}", "ETCDCTL_Z=1").bare(),
		c("--command-timeout=3s", "get", "foo").with("ETCDCTL_A=1", "ETCDCTL_COMMAND_TIMEOUT=", "ETCDCTL_Z=1"),
		c("get", "foo").with("ETCDCTL_WRITE_OUT=json", "ETCDCTL_HEX=true"),
		c("get", "foo").with("ETCDCTL_DIAL_TIMEOUT=zz"),
		c("get", "foo").with("ETCDCTL_ENDPOINTS={ep}").bare(),
		c("endpoint", "status").with("ETCDCTL_CLUSTER=true"))
	add(c("--cert", "", "get", "foo"), c("--key", "", "get", "foo"), c("--cacert", "", "get", "foo"),
		c("--cert", "/nonexistent", "get", "foo"), c("--cacert", "/nonexistent", "get", "foo"),
		c("--cert", "/nonexistent", "--key", "/nonexistent", "get", "foo"),
		c("--user", "root:x", "get", "foo"), c("--user", "root", "--password", "x", "get", "foo"),
		c("--insecure-skip-tls-verify", "get", "foo"),
		c("--max-request-bytes", "10", "put", "big", "0123456789012345678901234567890123456789"),
		c(dead, "--command-timeout=1s", "get", "foo").bare(), c("--endpoints=", "get", "foo").bare(),
		c("--insecure-transport=false", "--command-timeout=1s", "get", "foo"))

	// help and usage
	for _, h := range [][]string{{"get"}, {"put"}, {"del"}, {"txn"}, {"compaction"}, {"version"}, {"endpoint"},
		{"endpoint", "health"}, {"endpoint", "status"}, {"endpoint", "hashkv"}} {
		add(c(append(h, "--help")...).bare())
	}
	add(c("help", "get").bare(), c("endpoint").bare(), c("endpoint", "bogus").bare(), c("put", "--bogus").bare(),
		c("endpoint", "status", "--bogus").bare(), c("txn", "--bogus").bare())

	// get
	add(inFormats("get", "foo")...)
	add(inFormats("get", "dir", "--prefix")...)
	add(inFormats("get", "a", "c")...)
	add(c("get", "foo", "--hex"), c("get", "bin", "--hex"), c("get", "bin"), c("get", "dir", "--prefix", "--hex", "-w", "fields"),
		c("get", "foo", "--hex", "-w", "json"), c("get", "bin", "-w", "fields"), c("get", "quote\"key", "-w", "fields"),
		c("get", "space key"), c("get", "missing"), c("get", "missing", "-w", "json"), c("get", "missing", "-w", "fields"),
		c("get", "", "--prefix"), c("get", "", "--from-key", "--keys-only"), c("get", "b", "--from-key"),
		c("get", "a", "b", "c"), c("get", "dir", "--prefix", "--limit", "2", "-w", "fields"),
		c("get", "dir", "--prefix", "--order", "DESCEND"), c("get", "", "--prefix", "--sort-by", "VALUE", "--order", "ascend"),
		c("get", "", "--prefix", "--sort-by", "CREATE", "--order", "DESCEND"), c("get", "", "--prefix", "--sort-by", "MODIFY"),
		c("get", "", "--prefix", "--sort-by", "version", "--order", "DESCEND", "--keys-only"),
		c("get", "", "--prefix", "--sort-by", "KEY", "--order", "DESCEND", "--limit", "3"),
		c("get", "a", "--sort-by", "xx"), c("get", "a", "--order", "xx"), c("get", "a", "--consistency", "s"),
		c("get", "a", "--consistency", "x"), c("get", "a", "--rev", "3"), c("get", "a", "--rev", "3", "-w", "json"),
		c("get", "a", "--rev", "1000"), c("get", "dir", "--prefix", "--print-value-only"),
		c("get", "dir", "--prefix", "--print-value-only", "-w", "json"), c("get", "dir", "--prefix", "--keys-only"),
		c("get", "dir", "--prefix", "--keys-only", "-w", "json"), c("get", "", "--prefix", "--count-only", "-w", "fields"),
		c("get", "", "--prefix", "--count-only"), c("get", "", "--prefix", "--min-mod-rev", "5"),
		c("get", "", "--prefix", "--max-mod-rev", "5"), c("get", "", "--prefix", "--min-create-rev", "6", "--max-create-rev", "8"),
		c("get"), c("get", "a", "--prefix", "--from-key"), c("get", "a", "b", "--prefix"), c("get", "a", "--keys-only", "--count-only"),
		c("get", "--", "-a"), c("g", "foo"))

	// put
	add(c("put", "k1", "v1"), c("put", "k1", "v2", "--prev-kv"), c("put", "k1", "v3", "--prev-kv", "-w", "json"),
		c("put", "k1", "v4", "--prev-kv", "-w", "fields"), c("put", "k1", "v5", "--prev-kv", "-w", "protobuf"),
		c("put", "k1", "v6", "--prev-kv", "--hex"), c("put", "k1", "v7", "--prev-kv", "--hex", "-w", "fields"),
		c("put", "k1", "--ignore-value"), c("put", "k1", "--ignore-value", "--prev-kv", "-w", "json"),
		c("put", "k2").in("from stdin\nsecond line"), c("put", "k3").in(""), c("put"), c("put", "k4", "--ignore-value", "v"),
		c("put", "k4", "--lease=zz", "v"), c("put", "k4", "--lease=1234", "v"), c("put", "k1", "v8", "--ignore-lease"),
		c("put", "k1", "v9", "-w", "table"), c("put", "--", "-k", "-v"), c("put", "k5", "v", "extra"),
		c("put", "missing-key", "--ignore-value"), c("get", "k", "--prefix", "-w", "json"))

	// txn
	txnIn := []string{
		"mod(\"b\") > \"0\"\nvalue(\"foo\") = \"bar\"\n\nput t1 v1\nget b\n\ndel zz\n\n",
		"create(\"b\") = \"4\"\n\nput t2 v2\nget t --prefix\n\nput t3 v3 --prev-kv\nget t --prefix --keys-only\ndel t1 --prev-kv\n\n",
		"c(\"missing\") = \"0\"\nver(\"a\") != \"1\"\nm(\"a\") < \"100\"\nval(\"a\") > \"1\"\nlease(\"a\") = \"0\"\n\nput 'single q' \"double\\tq\"\nget \"single q\"\n\n\n",
		"\n\n\n",
		"\nput t4 v4\ndel t4\n\n\n",
	}
	for _, in := range txnIn {
		for _, f := range formats {
			add(c("txn", "-w", f).in(in))
		}
	}
	add(c("txn", "-i").in(txnIn[0]), c("txn", "--interactive", "--hex").in(txnIn[1]), c("txn", "-i").in("value(\"a\")\n"))
	for _, bad := range []string{
		"", "\n", "\n\n", "mod(\"b\") > \"0\"\n\nput t1 v1\n\ndel zz\n",
		"bogus(\"b\") = \"4\"\n\n\n\n", "value(\"b\") = \n\n\n\n", "value(b) = \"2\"\n\n\n\n", "value(\"b\") = 2\n\n\n\n",
		"create(\"b\")=\"4\"\n\n\n\n", "value(\"b\" \"c\") = \"2\"\n\n\n\n", "version(\"b\") = \"x\"\n\n\n\n",
		"lease(\"b\") = \"zz\"\n\n\n\n", "nocompare\n\n\n\n",
		"\nput a\n\n\n", "\nfoo a\n\n\n", "\nget\n\n\n", "\ndel\n\n\n", "\nput a b --lease=zz\n\n\n",
		"\nget a --bogus\n\n\n", "\nput a b", "\nget a b --prefix\n\n\n", "\nput t5 v\nput t5 w\n\n\n",
		"value(\"b\") => \"2\"\n\n\n\n",
	} {
		add(c("txn").in(bad))
	}
	add(c("txn", "extra"), c("txn", "-w", "yaml").in("\n\n\n"))

	// compaction
	add(c("compaction"), c("compaction", "x"), c("compaction", "1", "2"), c("compaction", "100000"), c("compaction", "3"),
		c("compaction", "2"), c("compaction", "0"), c("compaction", "-1"), c("compact", "4", "--physical", "-w", "json"),
		c("get", "a", "--rev", "2"), c("get", "a", "--rev", "2", "-w", "json"))

	// del
	add(c("del", "k1"), c("del", "k1"), c("del", "k2", "--prev-kv"), c("del", "t", "--prefix", "--prev-kv", "-w", "json"),
		c("del", "dir/x", "--prev-kv", "-w", "fields"), c("del", "missing", "-w", "protobuf"), c("del", "missing", "-w", "table"),
		c("del", "dir/y", "--prev-kv", "--hex"), c("del"), c("del", "a", "b", "c"), c("del", "a", "--prefix", "--from-key"),
		c("del", "a", "b", "--prefix"), c("del", "", "--range"), c("del", "r", "--range"), c("del", "a", "b", "--range", "--prev-kv"),
		c("del", "sp", "--from-key", "--prev-kv", "-w", "json"))

	// endpoint
	add(c("endpoint", "health"), c("endpoint", "health", "-w", "json"), c("endpoint", "health", "-w", "fields"),
		c("endpoint", "health", "-w", "table"), c("endpoint", "health", "-w", "protobuf"), c("endpoint", "health", "--cluster"),
		c("endpoint", "health", "-w", "yaml"))
	add(inFormats("endpoint", "status")...)
	add(c("endpoint", "status", "--hex", "-w", "fields"), c("endpoint", "status", "--cluster", "-w", "json"), c("endpoint", "st"),
		c("endpoint", "status", "extra"))
	add(inFormats("endpoint", "hashkv")...)
	add(c("endpoint", "hashkv", "--rev", "5"), c("endpoint", "hashkv", "--rev", "5", "--hex", "-w", "fields"),
		c("endpoint", "hashkv", "--cluster", "-w", "table"))
	for _, f := range []string{"simple", "json", "table", "fields"} {
		add(c("endpoint", "hashkv", "--rev", "100000", "-w", f))
	}
	for _, f := range []string{"simple", "json", "table"} {
		add(c("--endpoints=127.0.0.1:1,{ep}", "--command-timeout=1s", "endpoint", "status", "-w", f).bare(),
			c("--endpoints=127.0.0.1:1,{ep}", "--command-timeout=1s", "endpoint", "health", "-w", f).bare(),
			c("--endpoints=127.0.0.1:1,{ep}", "--command-timeout=1s", "endpoint", "hashkv", "-w", f).bare())
	}
	add(c(dead, "--command-timeout=1s", "endpoint", "status", "--cluster").bare())
	add(leaseCases()...)
	add(operatorCases()...)
	return cs
}

func TestCompatWithEtcdctl(t *testing.T) {
	f := getFixture(t)
	refTmp, ourTmp := t.TempDir(), t.TempDir()
	eps := map[string]string{f.refEP: "<ep>", f.ourEP: "<ep>", refTmp: "<tmp>", ourTmp: "<tmp>"}
	// The learner each side last had, for {learner} once it is removed.
	lastLearner := map[string]string{}
	for i, k := range compatCases() {
		name := k.name
		if name == "" {
			name = fmt.Sprintf("%03d %s", i, strings.Join(k.args, " "))
		}
		ok := t.Run(name, func(t *testing.T) {
			refBin := f.etcdctl
			if k.util {
				refBin = f.etcdutl
			}
			k.prepare(t, refTmp, refTmp)
			k.prepare(t, refTmp, ourTmp)
			refArgs, ourArgs := k.argsFor(f.refEP, refTmp, refTmp), k.argsFor(f.ourEP, refTmp, ourTmp)
			refArgs = withMemberIDs(t, refArgs, f.refEP, lastLearner)
			ourArgs = withMemberIDs(t, ourArgs, f.ourEP, lastLearner)
			var ref, our result
			if k.alignSecond {
				// Both sides at once, at the start of a second: on a loaded
				// machine one after the other may straddle a second.
				waitNewSecond()
				var wg sync.WaitGroup
				wg.Add(2)
				go func() { defer wg.Done(); ref = runBinary(t, refBin, refArgs, k.envFor(f.refEP), k.stdin) }()
				go func() { defer wg.Done(); our = runBinary(t, f.cairnctl, ourArgs, k.envFor(f.ourEP), k.stdin) }()
				wg.Wait()
			} else {
				ref = runBinary(t, refBin, refArgs, k.envFor(f.refEP), k.stdin)
				our = runBinary(t, f.cairnctl, ourArgs, k.envFor(f.ourEP), k.stdin)
			}
			t.Logf("etcdctl exit %d\nstdout:\n%sstderr:\n%s", ref.code,
				quoteLines(normalise(ref.stdout, eps)), quoteLines(normalise(ref.stderr, eps)))
			f.checkServers(t)
			compareResults(t, ref, our, eps)
		})
		if !ok && os.Getenv("CAIRNCTL_COMPAT_KEEP_GOING") == "" {
			// Later cases depend on earlier writes: stop at the first divergence.
			t.Fatalf("stopping after %q diverged (set CAIRNCTL_COMPAT_KEEP_GOING=1 to go on)", name)
		}
	}
}

func (k compatCase) argsFor(ep, ref, tmp string) []string {
	var out []string
	if !k.noEP && !k.util {
		out = append(out, "--endpoints="+ep)
	}
	r := strings.NewReplacer("{ep}", ep, "{ref}", ref, "{tmp}", tmp)
	for _, a := range k.args {
		out = append(out, r.Replace(a))
	}
	return out
}

// withMemberIDs replaces {self} and {learner} in args with the IDs that
// side's server reports (a removed learner's ID stays in last).
func withMemberIDs(t *testing.T, args []string, ep string, last map[string]string) []string {
	t.Helper()
	if !strings.Contains(strings.Join(args, " "), "{self}") && !strings.Contains(strings.Join(args, " "), "{learner}") {
		return args
	}
	self, learner, err := memberIDs(ep)
	if err != nil {
		t.Fatalf("member IDs at %s: %v", ep, err)
	}
	if learner == "none" && last[ep] != "" {
		learner = last[ep]
	}
	last[ep] = learner
	r := strings.NewReplacer("{self}", self, "{learner}", learner)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.Replace(a)
	}
	return out
}

// prepare copies the case's file, if any, from ref into tmp.
func (k compatCase) prepare(t *testing.T, ref, tmp string) {
	t.Helper()
	if k.copy[0] == "" {
		return
	}
	b, err := os.ReadFile(filepath.Join(ref, k.copy[0]))
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, k.copy[1]), b, 0o600); err != nil {
		t.Fatalf("prepare: %v", err)
	}
}

func (k compatCase) envFor(ep string) []string {
	var out []string
	for _, e := range k.env {
		out = append(out, strings.ReplaceAll(e, "{ep}", ep))
	}
	return out
}

func compareResults(t *testing.T, ref, our result, eps map[string]string) {
	t.Helper()
	if ref.code != our.code {
		t.Errorf("exit code: etcdctl %d, cairnctl %d", ref.code, our.code)
	}
	for _, s := range []struct {
		name     string
		ref, our []byte
	}{{"stdout", ref.stdout, our.stdout}, {"stderr", ref.stderr, our.stderr}} {
		r, o := normalise(s.ref, eps), normalise(s.our, eps)
		if r != o {
			t.Errorf("%s differs\n--- etcdctl\n%s\n--- cairnctl\n%s", s.name, quoteLines(r), quoteLines(o))
		}
	}
}

// quoteLines shows output with invisible characters escaped, line by line.
func quoteLines(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			fmt.Fprintf(&b, "  %q\n", l)
		}
	}
	return b.String()
}
