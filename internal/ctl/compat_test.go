package ctl_test

// The differential test: every case runs the reference etcdctl 3.6.16 and
// cairnctl with the same arguments, environment and stdin, each against its
// own freshly started server holding the same data; stdout, stderr and the
// exit code must match byte for byte after normalising what legitimately
// varies (timestamps, durations, pointers, ports, stack traces).
//
// Two servers, not one, so that writes land on the same revisions on both
// sides: each server advertises the same peer URL and cluster token, so the
// member and cluster IDs agree too, and the cases run in lockstep.
//
// The server under test is pluggable: CAIRNCTL_COMPAT_SERVER picks a
// factory from serverFactories (default "etcd", the real etcd 3.6.16).

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// startServer starts one single-member server in dir and returns its client
// endpoint (host:port), a function that stops it, and a channel closed when
// the server process has exited.
type startServer func(t testing.TB, dir string) (endpoint string, stop func(), exited <-chan struct{})

// serverFactories are the server pairs the differential test can run:
// the first serves the reference etcdctl, the second cairnctl. "mixed"
// compares etcdctl on etcd with cairnctl on cairn: the whole stack.
var serverFactories = map[string][2]startServer{
	"etcd":  {startEtcd, startEtcd},
	"cairn": {startCairn, startCairn},
	"mixed": {startEtcd, startCairn},
}

// fixture is shared by every test in the binary and torn down by TestMain.
type fixture struct {
	etcdctl  string // reference binary
	etcdutl  string // reference for the offline commands
	cairnctl string // built from this module
	refEP    string // server the reference runs against
	ourEP    string // server cairnctl runs against
	exited   []<-chan struct{}
	dirs     []string
	err      error
}

var (
	fixOnce  sync.Once
	fix      fixture
	stopsMu  sync.Mutex
	stops    []func()
	tmpRoots []string
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopsMu.Lock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	for _, d := range tmpRoots {
		_ = os.RemoveAll(d)
	}
	stopsMu.Unlock()
	framework.RemoveBinaries()
	os.Exit(code)
}

// getFixture builds cairnctl and starts both servers once per test binary.
func getFixture(t *testing.T) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("differential test starts servers; skipped in -short")
	}
	fixOnce.Do(func() { fix = newFixture(t) })
	if fix.err != nil {
		t.Fatalf("fixture: %v", fix.err)
	}
	return &fix
}

func newFixture(t *testing.T) fixture {
	var f fixture
	rel := refs.EtcdRelease(t, refs.Default)
	f.etcdctl = rel.Etcdctl
	f.etcdutl = rel.Etcdutl
	root, err := os.MkdirTemp("", "cairnctl-compat-")
	if err != nil {
		return fixture{err: err}
	}
	tmpRoots = append(tmpRoots, root)
	f.cairnctl = framework.Cairnctl(t)
	name := os.Getenv("CAIRNCTL_COMPAT_SERVER")
	if name == "" {
		name = "etcd"
	}
	pair, ok := serverFactories[name]
	if !ok {
		return fixture{err: fmt.Errorf("unknown CAIRNCTL_COMPAT_SERVER %q", name)}
	}
	if name != "etcd" {
		// cairn reports server version 3.6.0 where etcd says 3.6.16.
		normalisers = append(normalisers, struct {
			re       *regexp.Regexp
			repl     string
			volatile bool
		}{regexp.MustCompile(`\b3\.6\.16\b`), "3.6.0", true})
	}
	eps := make([]string, 2)
	for i := range eps {
		dir := filepath.Join(root, fmt.Sprintf("server%d", i))
		ep, stop, exited := pair[i](t, dir)
		f.exited = append(f.exited, exited)
		f.dirs = append(f.dirs, dir)
		stopsMu.Lock()
		stops = append(stops, stop)
		stopsMu.Unlock()
		eps[i] = ep
	}
	f.refEP, f.ourEP = eps[0], eps[1]
	for _, ep := range eps {
		if err := seed(ep); err != nil {
			return fixture{err: fmt.Errorf("seed %s: %w", ep, err)}
		}
	}
	return f
}

// seedData is written, in order, to both servers before any case runs.
var seedData = [][2]string{
	{"foo", "bar"},
	{"a", "1"},
	{"b", "2"},
	{"a", "11"},
	{"c", "3"},
	{"dir/x", "x1"},
	{"dir/y", "y1"},
	{"dir/z", "z1"},
	{"bin", "\x00\x01\xfe\xff"},
	{"space key", "value with spaces"},
	{"quote\"key", "multi\nline"},
	{"dir/x", "x2"},
}

func seed(ep string) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer cli.Close()
	for _, kv := range seedData {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := cli.Put(ctx, kv[0], kv[1])
		cancel()
		if err != nil {
			return fmt.Errorf("put %q: %w", kv[0], err)
		}
	}
	return seedLeases(cli)
}

// startEtcd runs the reference etcd server. Every instance advertises the
// same peer URL, so all get the same member and cluster IDs.
func startEtcd(t testing.TB, dir string) (string, func(), <-chan struct{}) {
	t.Helper()
	return startServerBinary(t, refs.EtcdRelease(t, refs.Default).Etcd, dir)
}

// startCairn starts the cairn binary the test framework built, like
// startEtcd.
func startCairn(t testing.TB, dir string) (string, func(), <-chan struct{}) {
	t.Helper()
	return startServerBinary(t, framework.Cairn(t), dir)
}

// startServerBinary starts an etcd-compatible server binary with a fixed
// advertised peer URL and token, so every server gets the same IDs.
func startServerBinary(t testing.TB, bin, dir string) (string, func(), <-chan struct{}) {
	t.Helper()
	clientPort, peerPort := freePort(t), freePort(t)
	ep := fmt.Sprintf("127.0.0.1:%d", clientPort)
	const advertisedPeer = "http://127.0.0.1:12380"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--name", "default",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", "http://"+ep,
		"--advertise-client-urls", "http://"+ep,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		"--initial-advertise-peer-urls", advertisedPeer,
		"--initial-cluster", "default="+advertisedPeer,
		"--initial-cluster-token", "cairnctl-compat",
		// small enough for one put to raise NOSPACE (the alarm cases)
		"--quota-backend-bytes", "1048576",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-done
		_ = logf.Close()
	}
	if err := waitReady(ep, done, 20*time.Second); err != nil {
		stop()
		log, _ := os.ReadFile(logf.Name())
		t.Fatalf("etcd at %s: %v\n%s", ep, err, log)
	}
	return ep, stop, done
}

// checkServers fails the test if a server has gone away (e.g. killed from
// outside), which would otherwise show up as confusing differences.
func (f *fixture) checkServers(t *testing.T) {
	t.Helper()
	for i, ch := range f.exited {
		select {
		case <-ch:
			log, _ := os.ReadFile(filepath.Join(f.dirs[i], "etcd.log"))
			if len(log) > 3000 {
				log = log[len(log)-3000:]
			}
			t.Fatalf("server %d exited during the test; its log ends:\n%s", i, log)
		default:
		}
	}
}

// waitReady polls until a linearizable read succeeds, the process exits, or
// the deadline passes.
func waitReady(ep string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: time.Second})
	if err != nil {
		return err
	}
	defer cli.Close()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := cli.Get(ctx, "ready")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before ready")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", timeout, err)
		}
	}
}

func freePort(t testing.TB) int { return framework.FreePort(t, "127.0.0.1") }

// result is one run of a binary.
type result struct {
	stdout, stderr []byte
	code           int
}

// runBinary runs bin with args, a clean environment plus env, and stdin.
func runBinary(t *testing.T, bin string, args, env []string, stdin string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run %s: %v", bin, err)
		}
		code = ee.ExitCode()
		if code < 0 {
			t.Fatalf("%s %q: %v", bin, args, err)
		}
	}
	return result{stdout: out.Bytes(), stderr: errb.Bytes(), code: code}
}

// normalisers rewrite what legitimately differs between two runs; the
// volatile ones change a value's width, so table padding is collapsed after.
var normalisers = []struct {
	re       *regexp.Regexp
	repl     string
	volatile bool
}{
	{regexp.MustCompile(`"ts":"[^"]*"`), `"ts":"<ts>"`, false},
	{regexp.MustCompile(`,"stacktrace":"[^"]*"`), ``, false},
	{regexp.MustCompile(`etcd-endpoints://0x[0-9a-f]+/`), `etcd-endpoints://<ptr>/`, false},
	{regexp.MustCompile(`LocalAddr: '127\.0\.0\.1:\d+'`), `LocalAddr: '<addr>'`, false},
	{regexp.MustCompile(`(?s)\ngoroutine \d+ \[running\]:\n.*`), "\n<stack>\n", false},
	{regexp.MustCompile(`\bpc=0x[0-9a-f]+\]`), `pc=<pc>]`, false},
	// a saved snapshot's size is the server's db size
	{regexp.MustCompile(`"size":"[^"]*"`), `"size":"<size>"`, false},
	// durations: "took = 1.2ms", "took":"1.2ms", "Took" : 1.2ms, table cells
	{regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|ms|s|m)\b`), `<dur>`, true},
	// the db size (in use) depends on when the server's backend committed
	{regexp.MustCompile(`\b\d+(\.\d+)? (B|kB|MB), \d+(\.\d+)? (B|kB|MB), \d+%`), `<size>, <size>, <pct>`, false},
	{regexp.MustCompile(`\|\s+\d+(\.\d+)? (B|kB|MB) \|\s+\d+(\.\d+)? (B|kB|MB) \|\s+\d+% \|`), `| <size> | <size> | <pct> |`, true},
	{regexp.MustCompile(`"(dbSize|dbSizeInUse)":\d+`), `"$1":<n>`, false},
	{regexp.MustCompile(`"(DBSize|DBSizeInUse)" : \d+`), `"$1" : <n>`, false},
}

// tableRule collapses table padding, which varies with the width of a
// normalised cell.
var tableRule = regexp.MustCompile(`(?m)^[+|].*[+|]$`)
var runs = regexp.MustCompile(`[ -]+`)

func normalise(b []byte, eps map[string]string) string {
	s := string(b)
	for from, to := range eps {
		s = strings.ReplaceAll(s, from, to)
	}
	volatile := false
	for _, n := range normalisers {
		if n.volatile && n.re.MatchString(s) {
			volatile = true
		}
		s = n.re.ReplaceAllString(s, n.repl)
	}
	if volatile {
		s = tableRule.ReplaceAllStringFunc(s, func(l string) string { return runs.ReplaceAllString(l, " ") })
	}
	return s
}
