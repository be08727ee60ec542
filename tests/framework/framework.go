// Package framework starts real cairn (and reference etcd) processes for
// process-level tests: each member binds its own loopback ports, logs to a
// file in the test's temp dir, and is killed when the test ends.
package framework

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// build is one set of built binaries: the normal build, or the one with
// the cairn_failpoints tag.
type build struct {
	once sync.Once
	dir  string
	err  error
}

var (
	normalBuild, failpointBuild build
)

// FailpointsTag is the build tag that compiles internal/failpoint's hooks,
// crash points and disk faults in (see that package).
const FailpointsTag = "cairn_failpoints"

// RepoRoot is the repository root, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Binaries builds cmd/cairn and cmd/cairnctl once per test binary and
// returns the directory holding them.
func Binaries(t testing.TB) string {
	t.Helper()
	return normalBuild.binaries(t)
}

// FailpointBinaries is Binaries built with the cairn_failpoints tag (once
// per test binary, in a directory of its own): the test-only hooks, crash
// points and disk faults of internal/failpoint exist only there.
func FailpointBinaries(t testing.TB) string {
	t.Helper()
	return failpointBuild.binaries(t, "-tags", FailpointsTag)
}

func (b *build) binaries(t testing.TB, flags ...string) string {
	t.Helper()
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "cairn-bin-")
		if b.err != nil {
			return
		}
		for _, c := range []string{"cairn", "cairnctl"} {
			args := append([]string{"build"}, flags...)
			if os.Getenv("CAIRN_TEST_RACE") != "" {
				// Race-detector builds: every member's log is checked for
				// reports when the test ends (see NewMember).
				args = append(args, "-race")
			}
			args = append(args, "-o", filepath.Join(b.dir, c), "./cmd/"+c)
			cmd := exec.Command("go", args...)
			cmd.Dir = RepoRoot()
			if out, err := cmd.CombinedOutput(); err != nil {
				b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

// RemoveBinaries deletes what Binaries and FailpointBinaries built; call
// it from TestMain after the tests ran.
func RemoveBinaries() {
	for _, b := range []*build{&normalBuild, &failpointBuild} {
		if b.dir != "" {
			os.RemoveAll(b.dir)
		}
	}
}

// Cairn is the path of the built cairn binary.
func Cairn(t testing.TB) string { return filepath.Join(Binaries(t), "cairn") }

// CairnFailpoints is the path of the cairn binary built with the
// cairn_failpoints tag.
func CairnFailpoints(t testing.TB) string {
	return filepath.Join(FailpointBinaries(t), "cairn")
}

// Cairnctl is the path of the built cairnctl binary.
func Cairnctl(t testing.TB) string { return filepath.Join(Binaries(t), "cairnctl") }

// Member is one server process (cairn or etcd) with a single-member
// configuration on loopback.
type Member struct {
	t       testing.TB
	Bin     string
	Name    string
	DataDir string
	Host    string
	Client  string // client URL
	Peer    string // peer URL
	Extra   []string
	Env     []string
	// ListenClient, when set, is listened on instead of Client (which is
	// still advertised).
	ListenClient string
	// ListenPeer, when set, is listened on instead of Peer (which is still
	// advertised), so a proxy can stand at the advertised address.
	ListenPeer string
	// Dir is the process's working directory ("" = the test's).
	Dir     string
	LogPath string
	// OverrideArgs, when non-nil, replaces Args() (an empty slice starts
	// the binary with no flags at all).
	OverrideArgs []string
	// InitialCluster, when set, replaces the single-member
	// --initial-cluster (see NewCluster).
	InitialCluster string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	starts int // processes started so far
	// readyBefore counts readyLine in the log before the current process
	// started (the log is appended to across restarts).
	readyBefore int
}

// readyLine is what cairn and etcd (3.4 to 3.7) log once they serve
// clients. WaitReady requires a new one from the current process, so a
// read answered by a stranger listening on the member's port (another
// test's server that got the same free port) does not count. A member must
// therefore log at info level (no --log-level warn).
const readyLine = "ready to serve client requests"

// NewMember prepares (but does not start) a single-member server using bin.
func NewMember(t testing.TB, bin, name string, extra ...string) *Member {
	t.Helper()
	host := "127.0.0.1"
	dir := t.TempDir()
	m := &Member{
		t: t, Bin: bin, Name: name, Host: host,
		DataDir: filepath.Join(dir, name+".etcd"),
		Client:  fmt.Sprintf("http://%s:%d", host, FreePort(t, host)),
		Peer:    fmt.Sprintf("http://%s:%d", host, FreePort(t, host)),
		Extra:   extra,
		LogPath: filepath.Join(dir, name+".log"),
	}
	t.Cleanup(func() {
		m.Kill()
		if strings.Contains(m.Log(), "WARNING: DATA RACE") {
			t.Errorf("%s reported a data race:\n%s", m.Name, m.Log())
		}
	})
	return m
}

// Args is the command line the member is started with.
func (m *Member) Args() []string {
	listen := m.Client
	if m.ListenClient != "" {
		listen = m.ListenClient
	}
	listenPeer := m.Peer
	if m.ListenPeer != "" {
		listenPeer = m.ListenPeer
	}
	args := []string{
		"--name", m.Name,
		"--data-dir", m.DataDir,
		"--listen-client-urls", listen,
		"--advertise-client-urls", m.Client,
		"--listen-peer-urls", listenPeer,
		"--initial-advertise-peer-urls", m.Peer,
		"--initial-cluster", m.initialCluster(),
	}
	return append(args, m.Extra...)
}

func (m *Member) initialCluster() string {
	if m.InitialCluster != "" {
		return m.InitialCluster
	}
	return m.Name + "=" + m.Peer
}

// Endpoint is the client endpoint without scheme.
func (m *Member) Endpoint() string { return strings.TrimPrefix(m.Client, "http://") }

// Start starts the process without waiting for it to serve.
func (m *Member) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		m.t.Fatal(err)
	}
	args := m.Args()
	if m.OverrideArgs != nil {
		args = m.OverrideArgs
	}
	m.readyBefore = strings.Count(m.Log(), readyLine)
	cmd := exec.Command(m.Bin, args...)
	cmd.Env = append(cleanEnv(), m.Env...)
	cmd.Dir = m.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		m.t.Fatalf("start %s: %v", m.Bin, err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	m.starts++
	go func(done chan struct{}) {
		err := cmd.Wait()
		logf.Close()
		m.mu.Lock()
		m.err = err
		m.mu.Unlock()
		close(done)
	}(m.done)
}

// StartAndWait starts the process and waits until it serves a linearizable
// read, failing the test after timeout.
func (m *Member) StartAndWait(timeout time.Duration) {
	m.t.Helper()
	m.Start()
	m.WaitReady(timeout)
}

// WaitReady waits until the member serves a linearizable read and the
// current process has logged that it serves clients.
func (m *Member) WaitReady(timeout time.Duration) {
	m.t.Helper()
	deadline := time.Now().Add(timeout)
	c := m.Client3()
	defer c.Close()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := c.Get(ctx, "health")
		cancel()
		if err == nil && m.loggedReady() {
			return
		}
		if err == nil {
			err = fmt.Errorf("a read was answered, but this process has not logged %q", readyLine)
		}
		select {
		case <-m.Done():
			m.t.Fatalf("%s exited before serving: %v\n%s", m.Name, m.ExitErr(), m.Log())
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("%s not ready after %v: %v\n%s", m.Name, timeout, err, m.Log())
		}
		waitOrDone(m.Done(), 50*time.Millisecond)
	}
}

// loggedReady reports whether the current process has logged readyLine.
func (m *Member) loggedReady() bool {
	m.mu.Lock()
	before := m.readyBefore
	m.mu.Unlock()
	return strings.Count(m.Log(), readyLine) > before
}

// waitOrDone pauses between polls, returning early if done closes.
func waitOrDone(done <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-done:
	}
}

// Client3 returns a clientv3 client for the member.
func (m *Member) Client3() *clientv3.Client {
	m.t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{m.Client},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		m.t.Fatal(err)
	}
	return c
}

// Starts is how many processes Start has started: the current process's
// number, 1 for the first. An answer received while Starts stayed the same
// from request to response came from that one process.
func (m *Member) Starts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.starts
}

// Done is closed when the process has exited.
func (m *Member) Done() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return m.done
}

// ExitErr is the process's exit error once it has exited.
func (m *Member) ExitErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Signal sends sig to the running process without waiting for anything
// (SIGSTOP, SIGCONT); it is an error if the process is not running.
func (m *Member) Signal(sig syscall.Signal) error {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return fmt.Errorf("%s: not started", m.Name)
	}
	select {
	case <-done:
		return fmt.Errorf("%s: exited", m.Name)
	default:
	}
	return cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the process to exit.
func (m *Member) Kill() { m.signal(syscall.SIGKILL) }

// Stop sends SIGTERM and waits for the process to exit.
func (m *Member) Stop() { m.signal(syscall.SIGTERM) }

func (m *Member) signal(sig syscall.Signal) {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Log returns what the process has logged so far.
func (m *Member) Log() string {
	b, _ := os.ReadFile(m.LogPath)
	return string(b)
}

// WaitLog waits until the log contains s.
func (m *Member) WaitLog(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(m.LogPath)
		if bytes.Contains(b, []byte(s)) {
			return true
		}
		waitOrDone(m.Done(), 20*time.Millisecond)
	}
	return false
}

// cleanEnv is the environment without ETCD_* and ETCDCTL_* variables, which
// would otherwise change or break the processes under test.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "ETCDCTL_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Run runs a command with a timeout and returns stdout, stderr and the exit
// code (-1 if it could not run).
func Run(t testing.TB, env []string, stdin string, name string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			code = -1
		}
	}
	return stdout.String(), stderr.String(), code
}
