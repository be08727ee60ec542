package ctl_test

// The v2 differential test: the same sequence of etcdctl v2 commands
// (ETCDCTL_API=2) runs through Debian's etcdctl 3.4 against etcd 3.4
// (--enable-v2) and through cairnctl against a second etcd 3.4, or against
// cairn; stdout, stderr and exit codes must match after normalising what
// legitimately differs (v2 indexes, which etcd 3.4 also spends on its own
// membership writes, expirations, remaining TTLs, client URLs, the ID of
// a member added during the run).
//
// Steps run in lockstep, each side against its own fresh server. Steps
// that need what cairn does not serve yet (v2 watches, /v2/members, and so
// cluster-health) are skipped against cairn, each group with a message
// naming the missing endpoint, decided by probing the server: they run as
// soon as the server side serves them.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tests/framework"
)

const (
	debianEtcd    = "/usr/bin/etcd"
	debianEtcdctl = "/usr/bin/etcdctl"
	// v2AdvertisedPeer is advertised (not listened on) by every server, so
	// all get the same member ID; v2AddedPeer is the peer URL of the member
	// the sequence adds.
	v2AdvertisedPeer = "http://127.0.0.1:12390"
	v2AddedPeer      = "http://127.0.0.1:12391"
)

// debianV2 returns Debian's etcd 3.4 and etcdctl, installing etcd-server
// and etcd-client with apt-get when missing (no service is started), or
// skips the test saying why.
func debianV2(t *testing.T) (etcd, etcdctl string) {
	t.Helper()
	have := func() bool {
		for _, p := range []string{debianEtcd, debianEtcdctl} {
			if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if have() {
		return debianEtcd, debianEtcdctl
	}
	if os.Geteuid() != 0 {
		t.Skipf("v2 reference missing and installing it needs root: apt-get install -y etcd-server etcd-client")
	}
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); os.IsNotExist(err) {
		if os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755) == nil {
			defer os.Remove(policy)
		}
	}
	cmd := exec.Command("apt-get", "install", "-y", "etcd-server", "etcd-client")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil || !have() {
		t.Skipf("v2 reference: apt-get install etcd-server etcd-client failed: %v\n%s", err, out)
	}
	return debianEtcd, debianEtcdctl
}

// v2Side is one column of the differential: a CLI and its server.
type v2Side struct {
	name   string
	ctl    string
	member *framework.Member
	base   int64 // X-Etcd-Index before the first step
	ep     string
}

func startV2Server(t *testing.T, bin string, extra ...string) *framework.Member {
	t.Helper()
	m := framework.NewMember(t, bin, "infra0", extra...)
	m.ListenPeer, m.Peer = m.Peer, v2AdvertisedPeer
	m.StartAndWait(30 * time.Second)
	return m
}

// etcdIndex reads the current v2 index of the server at ep.
func etcdIndex(t *testing.T, ep string) int64 {
	t.Helper()
	resp, err := http.Get(ep + "/v2/keys/")
	if err != nil {
		t.Fatalf("GET %s/v2/keys/: %v", ep, err)
	}
	defer resp.Body.Close()
	n, err := strconv.ParseInt(resp.Header.Get("X-Etcd-Index"), 10, 64)
	if err != nil {
		t.Fatalf("GET %s/v2/keys/: X-Etcd-Index %q", ep, resp.Header.Get("X-Etcd-Index"))
	}
	return n
}

// v2Step is one command, or with bg a background watcher: bg starts, the
// foreground commands run one by one, each after the watcher printed
// waitAfter[i] lines in all; then the watcher gets SIGINT unless it exited.
type v2Step struct {
	args  []string
	env   []string
	stdin string
	needs string // "watch", "members": skipped on a server without them

	bg        []string
	fg        [][]string
	waitAfter []int
}

func s(args ...string) v2Step { return v2Step{args: args} }

func (st v2Step) with(env ...string) v2Step { st.env = env; return st }
func (st v2Step) in(stdin string) v2Step    { st.stdin = stdin; return st }
func (st v2Step) need(what string) v2Step   { st.needs = what; return st }

func bgWatch(bg []string, fg [][]string, waitAfter ...int) v2Step {
	return v2Step{bg: bg, fg: fg, waitAfter: waitAfter, needs: "watch"}
}

// v2Steps is the sequence; the seed documents' commands appear verbatim
// (the endpoint comes from ETCDCTL_ENDPOINTS, or "{ep}" for -C), except
// exec-watch's `ls -al`, whose output names files and times.
var v2Steps = []v2Step{
	// seeds 001: cluster-health, member list
	s("cluster-health").need("members"),
	s("-C", "{ep}", "cluster-health").need("members"),
	s("member", "list").need("members"),
	// seeds 001: keys
	s("set", "/liuyiling/testkey", "610", "--ttl", "100", "--swap-with-value", "value"),
	s("get", "/liuyiling/testkey"),
	s("set", "/liuyiling/testkey", "610", "--ttl", "100"),
	s("get", "/liuyiling/testkey"),
	s("update", "/liuyiling/testkey", "world", "--ttl", "100"),
	s("-o", "extended", "get", "/liuyiling/testkey"),
	s("rm", "/liuyiling/testkey"),
	s("mk", "/liuyiling/testkey", "hello"),
	s("mk", "/liuyiling/testkey", "hello"),
	s("mkdir", "/liuyiling"),
	s("setdir", "/liuyiling"),
	s("updatedir", "/liuyiling"),
	s("rmdir", "/liuyiling"),
	s("ls", "--recursive"),
	s("ls"),
	s("ls", "-p", "-r", "/liuyiling"),
	// arguments, flags, stdin, environment
	s("set"),
	s("set", "/k"),
	s("set", "/k").in("from stdin\n"),
	s("get", "/k"),
	s("-o", "json", "get", "/k"),
	s("--output", "extended", "set", "/k", "v2"),
	s("-o", "xml", "get", "/k"),
	s("-o", "xml", "get", "/missing"),
	s("-o", "json", "get", "/missing"),
	s("get", "/liuyiling"),
	s("get", "/liuyiling/testkey/below"),
	s("set", "/liuyiling", "x"),
	s("--no-sync", "get", "/k"),
	s("--endpoints", "{ep}", "get", "/k").with(),
	s("--endpoint", "{ep}", "get", "/k").with(),
	s("get", "/k").with("ETCDCTL_PEERS={ep}"),
	s("get", "/k").with("ETCDCTL_ENDPOINT={ep}"),
	s("-endpoints", "{ep}", "get", "/k").with(),
	s("--endpoints", "http://127.0.0.1:1", "get", "/k").with(),
	s("--no-sync", "--endpoints", "http://127.0.0.1:1", "get", "/k").with(),
	s("--endpoints", "127.0.0.1:2", "get", "/k").with(),
	s("--nosuch", "get", "/k"),
	s("get", "--nosuch", "/k"),
	s("nosuch"),
	s("--version"),
	s("--help"),
	s("help", "set"),
	s("set", "--help"),
	s("member", "--help"),
	s("backup", "--help"),
	// the other key commands and their flags, in every format
	s("mk", "--in-order", "/queue", "job1"),
	s("-o", "json", "mk", "--in-order", "/queue", "job2"),
	s("ls", "--sort", "/queue"),
	s("-o", "extended", "mkdir", "/dir1", "--ttl", "50"),
	s("-o", "json", "setdir", "/dir2"),
	s("-o", "extended", "updatedir", "/dir2", "--ttl", "60"),
	s("updatedir", "/nodir"),
	s("-o", "json", "rmdir", "/dir2"),
	s("rm", "/dir1"),
	s("rm", "--dir", "/dir1"),
	s("set", "/cas", "one"),
	s("set", "--swap-with-value", "two", "/cas", "three"),
	s("set", "--swap-with-value", "one", "/cas", "two"),
	s("set", "--swap-with-index", "1", "/cas", "x"),
	s("rm", "--with-value", "nope", "/cas"),
	s("rm", "--with-index", "1", "/cas"),
	s("rm", "--with-value", "two", "/cas"),
	s("set", "/tree/a/b", "deep"),
	s("rm", "/tree"),
	s("-o", "extended", "rm", "-r", "/tree"),
	s("update", "/tree", "x"),
	s("mk", "/k2", "v", "--ttl", "100"),
	s("-o", "json", "get", "/k2"),
	s("-o", "extended", "ls", "/k2"),
	s("ls", "/nonexistent"),
	s("-o", "json", "rm", "/k2"),
	s("-o", "extended", "rm", "/k"),
	s("get", "-q", "/queue"),
	s("rm", "-r", "/queue"),
	s("ls", "-p"),
	// watches (seeds 001): one event, --forever, recursive, after-index
	bgWatch([]string{"watch", "mykey"}, [][]string{{"set", "mykey", "one"}}, 1),
	bgWatch([]string{"watch", "mykey", "--forever"}, [][]string{{"update", "mykey", "hehe"}, {"update", "mykey", "haha"}}, 1, 2),
	bgWatch([]string{"watch", "-r", "/w"}, [][]string{{"mkdir", "/w/d"}, {"set", "/w/d/k", "v"}}, 0, 2),
	bgWatch([]string{"-o", "extended", "watch", "--after-index", "{idx+2}", "mykey"}, nil),
	bgWatch([]string{"exec-watch", "--recursive", "/foo", "--", "sh", "-c", "echo hi"}, [][]string{{"set", "/foo/bar", "1"}}, 1),
	bgWatch([]string{"exec-watch", "mykey", "--", "sh", "-c", `echo "$ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_MODIFIED_INDEX"`},
		[][]string{{"update", "mykey", "hehe"}}, 1),
	bgWatch([]string{"exec-watch", "-r", "/foo", "--", "sh", "-c", `echo "$ETCD_WATCH_ACTION $ETCD_WATCH_KEY"`},
		[][]string{{"mkdir", "/foo/sub"}, {"rm", "/foo/bar"}}, 0, 1),
	s("exec-watch", "mykey"),
	s("watch"),
	// members (seeds 000/001/002): update, remove, add — add last: a
	// single-member cluster that adds a member loses its quorum
	s("member", "list", "extra").need("members"),
	s("member", "update", "{self}", v2AdvertisedPeer).need("members"),
	s("member", "update", "{self}").need("members"),
	s("member", "remove", "a8266ecf031671f3").need("members"),
	s("member", "remove", "infra0").need("members"),
	s("member", "remove").need("members"),
	s("member", "add", "infra9").need("members"),
	s("member", "add", "infra9", v2AdvertisedPeer).need("members"),
	s("member", "add", "infra3", v2AddedPeer).need("members"),
	s("member", "list").need("members"),
	s("cluster-health").need("members"),
}

var (
	v2IndexRes = []*regexp.Regexp{
		regexp.MustCompile(`(\[)(\d+)(\]\n)`),
		regexp.MustCompile(`((?:Created-Index|Modified-Index|Index): )(\d+)()`),
		regexp.MustCompile(`("(?:createdIndex|modifiedIndex)":)(\d+)()`),
		regexp.MustCompile(`(/)(\d{20})()`),
		regexp.MustCompile(`(mykey \w+ )(\d+)(\n)`),
		regexp.MustCompile(`(\[\d+ != )(\d+)(\])`), // a compare failure's index
	}
	v2ExpRe = regexp.MustCompile(`"expiration":"[^"]+","ttl":\d+`)
	v2TTLRe = regexp.MustCompile(`TTL: [1-9]\d*`)
	// A member ID prints as %x, so one below 2^60 has fewer than 16 digits
	// (one in 16 runs); below 12 digits (one in 65,536) is left unmatched
	// so that short hex-looking words are never taken for IDs.
	v2MemberRe = regexp.MustCompile(`\b[0-9a-f]{12,16}\b`)
)

// normaliseV2 rewrites one output of side sd for comparison.
func normaliseV2(out string, sd *v2Side, self string) string {
	out = strings.ReplaceAll(out, sd.ep, "<client>")
	out = strings.ReplaceAll(out, strings.TrimPrefix(sd.ep, "http://"), "<client>")
	for _, re := range v2IndexRes {
		out = re.ReplaceAllStringFunc(out, func(m string) string {
			p := re.FindStringSubmatch(m)
			n, _ := strconv.ParseInt(p[2], 10, 64)
			return fmt.Sprintf("%s<%d>%s", p[1], n-sd.base, p[3])
		})
	}
	out = v2ExpRe.ReplaceAllString(out, `"expiration":"<t>","ttl":<ttl>`)
	out = v2TTLRe.ReplaceAllString(out, "TTL: <ttl>")
	out = v2MemberRe.ReplaceAllStringFunc(out, func(id string) string {
		if id == self {
			return id
		}
		return "<new-member-id>"
	})
	return orderMembers(out, self)
}

// orderMembers puts the lines naming a member, and the entries of an
// ETCD_INITIAL_CLUSTER line, in one order. Both servers list members by ID,
// and a member added at runtime has an ID derived from the second of the
// add, so it sorts before or after the first member by chance.
func orderMembers(out, self string) string {
	if !strings.Contains(out, "<new-member-id>") && !strings.Contains(out, "ETCD_INITIAL_CLUSTER=") {
		return out
	}
	lines := strings.Split(out, "\n")
	var at []int
	var named []string
	for i, l := range lines {
		if v, ok := strings.CutPrefix(l, `ETCD_INITIAL_CLUSTER="`); ok {
			parts := strings.Split(strings.TrimSuffix(v, `"`), ",")
			sort.Strings(parts)
			lines[i] = `ETCD_INITIAL_CLUSTER="` + strings.Join(parts, ",") + `"`
			continue
		}
		if strings.Contains(l, "<new-member-id>") || (self != "" && strings.Contains(l, self)) {
			at = append(at, i)
			named = append(named, l)
		}
	}
	sort.Strings(named)
	for j, i := range at {
		lines[i] = named[j]
	}
	return strings.Join(lines, "\n")
}

// expand replaces {ep}, {self} and {idx+N} in a word.
var idxRe = regexp.MustCompile(`\{idx\+(\d+)\}`)

func (sd *v2Side) expand(w, self string) string {
	w = strings.ReplaceAll(w, "{ep}", sd.ep)
	w = strings.ReplaceAll(w, "{self}", self)
	return idxRe.ReplaceAllStringFunc(w, func(m string) string {
		n, _ := strconv.ParseInt(idxRe.FindStringSubmatch(m)[1], 10, 64)
		return strconv.FormatInt(sd.base+n, 10)
	})
}

func (sd *v2Side) env(st v2Step) []string {
	env := []string{"ETCDCTL_API=2"}
	if st.env == nil {
		return append(env, "ETCDCTL_ENDPOINTS="+sd.ep)
	}
	for _, kv := range st.env {
		env = append(env, strings.ReplaceAll(kv, "{ep}", sd.ep))
	}
	return env
}

func (sd *v2Side) words(args []string, self string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = sd.expand(a, self)
	}
	return out
}

// lineBuffer collects a watcher's output and tells when it has n lines.
type lineBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lineBuffer) lines() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), "\n")
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runStep runs one step on one side and returns its transcript.
func (sd *v2Side) runStep(t *testing.T, st v2Step, self string) string {
	t.Helper()
	if st.bg == nil {
		r := runBinary(t, sd.ctl, sd.words(st.args, self), sd.env(st), st.stdin)
		return fmt.Sprintf("stdout:\n%s\nstderr:\n%s\nexit %d", r.stdout, r.stderr, r.code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sd.ctl, sd.words(st.bg, self)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, sd.env(st)...)
	cmd.Dir = t.TempDir()
	var out, errb lineBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	// The watcher must be registered before the first write: wait until
	// the server counts it (etcd's /v2/stats/store "watchers").
	waitWatchers(t, sd.ep, 1, exited)
	var fg strings.Builder
	for i, args := range st.fg {
		r := runBinary(t, sd.ctl, sd.words(args, self), sd.env(st), "")
		fmt.Fprintf(&fg, "[fg %d] stdout:\n%s\nstderr:\n%s\nexit %d\n", i, r.stdout, r.stderr, r.code)
		want := 0
		if i < len(st.waitAfter) {
			want = st.waitAfter[i]
		}
		deadline := time.Now().Add(20 * time.Second)
		for out.lines() < want && time.Now().Before(deadline) {
			select {
			case <-exited:
				deadline = time.Now()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if st.fg == nil {
		// nothing to wait for but the watcher's own answer (--after-index)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
		}
	}
	select {
	case <-exited:
	default:
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	return fmt.Sprintf("%s[bg] stdout:\n%s\nstderr:\n%s\nexit %d", fg.String(), out.String(), errb.String(), cmd.ProcessState.ExitCode())
}

// waitWatchers waits until the server reports n v2 watchers, or the
// watcher process exited (it then has its answer already).
func waitWatchers(t *testing.T, ep string, n int, exited <-chan struct{}) {
	t.Helper()
	re := regexp.MustCompile(`"watchers":(\d+)`)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(ep + "/v2/stats/store")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if m := re.FindSubmatch(b); m != nil {
				if got, _ := strconv.Atoi(string(m[1])); got >= n {
					return
				}
			}
		}
		select {
		case <-exited:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s: no watcher registered after 20s", ep)
}

// serves says whether the server at ep serves what a step needs.
func serves(ep, what string) (bool, string) {
	switch what {
	case "members":
		resp, err := http.Get(ep + "/v2/members")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, "GET /v2/members answers " + resp.Status
	case "watch":
		resp, err := http.Get(ep + "/v2/stats/store")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return false, "GET /v2/stats/store answers " + resp.Status
		}
		c := http.Client{Timeout: 300 * time.Millisecond}
		resp, err = c.Get(ep + "/v2/keys/probe-watch?wait=true")
		if err != nil {
			return true, "" // still waiting: watches are served
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && err != nil {
			return true, "" // the head came at once, the event is awaited: etcd's shape
		}
		return false, "GET ?wait=true answers " + resp.Status + " " + strings.TrimSpace(string(b))
	}
	return true, ""
}

// runV2Differential runs the sequence on ref and ours in lockstep.
func runV2Differential(t *testing.T, ref, ours *v2Side) {
	self := ""
	cmd := exec.Command(ref.ctl, "--no-sync", "--endpoints", ref.ep, "member", "list")
	cmd.Env = []string{"ETCDCTL_API=2"}
	if b, err := cmd.Output(); err == nil {
		self, _, _ = strings.Cut(string(b), ":")
	}
	if len(self) != 16 {
		t.Fatalf("reference member list: %q", self)
	}
	for _, sd := range []*v2Side{ref, ours} {
		sd.base = etcdIndex(t, sd.ep)
	}
	skipped := map[string]string{}
	for i, st := range v2Steps {
		name := strings.Join(append(append([]string{}, st.bg...), st.args...), " ")
		if st.needs != "" {
			if _, done := skipped[st.needs]; !done {
				if ok, why := serves(ours.ep, st.needs); !ok {
					skipped[st.needs] = why
				}
			}
			if why, skip := skipped[st.needs]; skip {
				t.Logf("step %d %q skipped: %s does not serve v2 %s yet (%s)", i, name, ours.name, st.needs, why)
				continue
			}
		}
		want := normaliseV2(ref.runStep(t, st, self), ref, self)
		got := normaliseV2(ours.runStep(t, st, self), ours, self)
		if got != want {
			t.Errorf("step %d: %s\n--- %s (want)\n%s\n--- %s (got)\n%s", i, name, ref.name, want, ours.name, got)
		}
	}
	for what, why := range skipped {
		t.Logf("SKIPPED against %s: every step needing v2 %s (%s); they run once the server serves it", ours.name, what, why)
	}
}

// TestV2CompatEtcd34 runs the sequence through etcdctl and cairnctl, each
// against its own Debian etcd 3.4.
func TestV2CompatEtcd34(t *testing.T) {
	if testing.Short() {
		t.Skip("differential test starts servers; skipped in -short")
	}
	etcd, etcdctl := debianV2(t)
	ref := &v2Side{name: "etcdctl on etcd 3.4", ctl: etcdctl, member: startV2Server(t, etcd, "--enable-v2")}
	ours := &v2Side{name: "cairnctl on etcd 3.4", ctl: framework.Cairnctl(t), member: startV2Server(t, etcd, "--enable-v2")}
	ref.ep, ours.ep = ref.member.Client, ours.member.Client
	runV2Differential(t, ref, ours)
}

// TestV2CompatCairn runs the sequence through etcdctl against etcd 3.4 and
// through cairnctl against cairn.
func TestV2CompatCairn(t *testing.T) {
	if testing.Short() {
		t.Skip("differential test starts servers; skipped in -short")
	}
	etcd, etcdctl := debianV2(t)
	ref := &v2Side{name: "etcdctl on etcd 3.4", ctl: etcdctl, member: startV2Server(t, etcd, "--enable-v2")}
	ours := &v2Side{name: "cairnctl on cairn", ctl: framework.Cairnctl(t), member: startV2Server(t, framework.Cairn(t))}
	ref.ep, ours.ep = ref.member.Client, ours.member.Client
	runV2Differential(t, ref, ours)
}

// A new member's ID of fewer than 16 hex digits (it prints as %x) is
// normalised like any other, and the lines naming it are ordered alike.
func TestNormaliseShortMemberID(t *testing.T) {
	self := "3130fbbb047a3cf6"
	etcd := "9663668f8b5188f[unstarted]: peerURLs=http://127.0.0.1:12391\n" +
		self + ": name=infra0 peerURLs=http://127.0.0.1:12390 isLeader=true\n"
	cairn := self + ": name=infra0 peerURLs=http://127.0.0.1:12390 isLeader=true\n" +
		"a2f6e1c0d3b4e5f6[unstarted]: peerURLs=http://127.0.0.1:12391\n"
	norm := func(out string) string {
		out = v2MemberRe.ReplaceAllStringFunc(out, func(id string) string {
			if id == self {
				return id
			}
			return "<new-member-id>"
		})
		return orderMembers(out, self)
	}
	if a, b := norm(etcd), norm(cairn); a != b {
		t.Fatalf("normalised outputs differ:\n%s\n%s", a, b)
	}
	if got := v2MemberRe.FindAllString("added member be feed 0 42 cafe", -1); got != nil {
		t.Fatalf("short hex-looking words taken for IDs: %q", got)
	}
}
