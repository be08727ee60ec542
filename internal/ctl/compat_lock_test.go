package ctl_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// lockCase is a lock or elect command line run by both binaries, each
// against its own server, with a script of what happens around it: the
// test may hold the lock or lead the election first (holder), and acts on
// the running command in order (steps). Each side runs its script on its
// own server, so revisions stay in lockstep.
type lockCase struct {
	args []string
	// holder, when set, is "lock:<name>" or "elect:<name>:<value>": the
	// test holds that lock or leads that election before the command
	// starts.
	holder string
	steps  []lockStep
}

// lockStep is one action on a running command.
type lockStep struct {
	stdoutLines int    // wait until stdout has this many lines
	keys        string // "<prefix>=<n>": wait until n keys are under prefix
	signal      syscall.Signal
	group       bool   // signal the whole process group
	release     bool   // the holder unlocks or resigns
	proclaim    string // the holder (a leader) proclaims this value
	revoke      string // revoke the lease of the key under this prefix
	open        bool   // create the file $GATE names
	watching    bool   // wait until the server has a watcher (the command waits on a watch)
}

func lc(args ...string) lockCase { return lockCase{args: args} }

func (k lockCase) held(h string) lockCase                      { k.holder = h; return k }
func (k lockCase) then(s ...lockStep) lockCase                 { k.steps = append(k.steps, s...); return k }
func lines(n int) lockStep                                     { return lockStep{stdoutLines: n} }
func keysAt(prefix string, n int) lockStep                     { return lockStep{keys: fmt.Sprintf("%s=%d", prefix, n)} }
func sig(s syscall.Signal) lockStep                            { return lockStep{signal: s} }
func release() lockStep                                        { return lockStep{release: true} }
func proclaim(v string) lockStep                               { return lockStep{proclaim: v} }
func revokeUnder(prefix string) lockStep                       { return lockStep{revoke: prefix} }
func sigGroupOf(s syscall.Signal) lockStep                     { return lockStep{signal: s, group: true} }
func openGate() lockStep                                       { return lockStep{open: true} }
func watching() lockStep                                       { return lockStep{watching: true} }
func (k lockCase) name() string                                { return fmt.Sprintf("%q", k.args) }
func (k lockCase) withHolder(h string, s ...lockStep) lockCase { return k.held(h).then(s...) }

func lockCases() []lockCase {
	show := `echo "$ETCD_LOCK_KEY $ETCD_LOCK_REV"`
	// gated prints start, waits until the test creates $GATE, prints end
	gated := `echo start; while [ ! -e "$GATE" ]; do sleep 0.05; done; echo end`
	return []lockCase{
		// arguments and help
		lc("lock"), lc("lock", "--help"), lc("elect"), lc("elect", "--help"), lc("elect", "a", "b", "c"),
		lc("elect", "a"), lc("elect", "-l", "a", "b"), lc("lock", "--ttl", "x", "a"),
		// a command run while holding the lock
		lc("lock", "l1", "--", "sh", "-c", show),
		lc("lock", "--ttl", "5", "l1", "echo", "again"),
		lc("lock", "l2", "--", "sh", "-c", "echo out; echo err >&2; exit 3"),
		lc("lock", "l3", "--", "sh", "-c", "kill -TERM $$"),
		lc("lock", "l4", "--", "/nonexistent/command"),
		// SIGINT to lock (not to the command) while the command runs: the
		// command finishes, then the lock is released; SIGINT to both
		// kills the command (exit 255)
		lc("lock", "l5", "--", "sh", "-c", gated).then(lines(1), sig(syscall.SIGINT), openGate(), keysAt("l5/", 0)),
		lc("lock", "l5", "--", "sh", "-c", gated).then(lines(1), sigGroupOf(syscall.SIGINT), keysAt("l5/", 0)),
		// held until a signal, in every output format
		lc("lock", "l6").then(lines(2), sig(syscall.SIGINT), keysAt("l6/", 0)),
		lc("lock", "l6", "-w", "fields").then(lines(10), sig(syscall.SIGTERM)),
		lc("lock", "l6", "-w", "simple", "--hex").then(lines(2), sig(syscall.SIGINT)),
		lc("lock", "l6", "-w", "bogus"),
		// the session's lease revoked while holding
		lc("lock", "l7").then(lines(2), revokeUnder("l7/")),
		// waiting for a held lock: released, or interrupted
		lc("lock", "l8", "--", "echo", "got it").withHolder("lock:l8", keysAt("l8/", 2), watching(), release()),
		lc("lock", "l9").withHolder("lock:l9", keysAt("l9/", 2), watching(), sig(syscall.SIGINT), keysAt("l9/", 1)),
		// campaign: lead until a signal, then resign
		lc("elect", "e1", "p1").then(lines(2), sig(syscall.SIGINT), keysAt("e1/", 0)),
		lc("elect", "e1", "p1", "-w", "fields").then(lines(10), sig(syscall.SIGINT)),
		// campaign behind a leader: it resigns, or the campaign is interrupted
		lc("elect", "e2", "p2").withHolder("elect:e2:first", keysAt("e2/", 2), watching(), release(), lines(2), sig(syscall.SIGINT)),
		lc("elect", "e3", "p3").withHolder("elect:e3:first", keysAt("e3/", 2), watching(), sig(syscall.SIGINT)),
		// observe: the leader and each proclamation
		lc("elect", "-l", "e5").withHolder("elect:e5:v1", lines(2), proclaim("v2"), lines(4), sig(syscall.SIGINT)),
		lc("elect", "-l", "e6", "-w", "json").withHolder("elect:e6:v1", lines(1), sig(syscall.SIGINT)),
	}
}

// leaseHex and leaseDec are lease IDs, which each server chooses.
var (
	leaseHex = regexp.MustCompile(`([a-z0-9])/[0-9a-f]{12,16}\b`)
	leaseDec = regexp.MustCompile(`"Lease" : \d+`)
	leaseB64 = regexp.MustCompile(`"(key|lease)":("[A-Za-z0-9+/=]+"|\d+)`)
	leaseEsc = regexp.MustCompile(`\\x2f(\\x[0-9a-f]{2}){12,16}`) // --hex: "/" and the lease's hex digits
)

func normaliseLeases(b []byte) []byte {
	b = leaseEsc.ReplaceAll(b, []byte(`\x2f<lease>`))
	b = leaseHex.ReplaceAll(b, []byte("$1/<lease>"))
	b = leaseDec.ReplaceAll(b, []byte(`"Lease" : <lease>`))
	return leaseB64.ReplaceAll(b, []byte(`"$1":<lease>`))
}

// TestCompatLockElect compares `lock` and `elect` of etcdctl 3.6.16 and
// cairnctl, each on its own fresh server (CAIRNCTL_COMPAT_SERVER picks the
// pair, as for TestCompatWithEtcdctl).
func TestCompatLockElect(t *testing.T) {
	if testing.Short() {
		t.Skip("differential test starts servers; skipped in -short")
	}
	rel := refs.EtcdRelease(t, refs.Default)
	cairnctl := framework.Cairnctl(t)
	name := os.Getenv("CAIRNCTL_COMPAT_SERVER")
	if name == "" {
		name = "etcd"
	}
	pair, ok := serverFactories[name]
	if !ok {
		t.Fatalf("unknown CAIRNCTL_COMPAT_SERVER %q", name)
	}
	root := t.TempDir()
	var eps [2]string
	var clis [2]*clientv3.Client
	for i := range eps {
		ep, stop, _ := pair[i](t, filepath.Join(root, fmt.Sprintf("server%d", i)))
		t.Cleanup(stop)
		eps[i] = ep
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		clis[i] = cli
	}
	norm := map[string]string{eps[0]: "<ep>", eps[1]: "<ep>"}
	for i, k := range lockCases() {
		t.Run(fmt.Sprintf("%02d %s", i, k.name()), func(t *testing.T) {
			var ref, our result
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); ref = runLockCase(t, rel.Etcdctl, eps[0], clis[0], k) }()
			go func() { defer wg.Done(); our = runLockCase(t, cairnctl, eps[1], clis[1], k) }()
			wg.Wait()
			for _, r := range []*result{&ref, &our} {
				r.stdout, r.stderr = normaliseLeases(r.stdout), normaliseLeases(r.stderr)
			}
			t.Logf("etcdctl exit %d\nstdout:\n%sstderr:\n%s", ref.code,
				quoteLines(normalise(ref.stdout, norm)), quoteLines(normalise(ref.stderr, norm)))
			compareResults(t, ref, our, norm)
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a poller.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

// runLockCase runs one case against ep (cli is a client of the same
// server, for the holder and the steps).
func runLockCase(t *testing.T, bin, ep string, cli *clientv3.Client, k lockCase) result {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	release := func() error { return nil }
	var leader *concurrency.Election
	if k.holder != "" {
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
		if err != nil {
			t.Error(err)
			return result{}
		}
		defer s.Close()
		parts := strings.SplitN(k.holder, ":", 3)
		switch parts[0] {
		case "lock":
			m := concurrency.NewMutex(s, parts[1])
			err = m.Lock(ctx)
			release = func() error { return m.Unlock(ctx) }
		case "elect":
			leader = concurrency.NewElection(s, parts[1])
			err = leader.Campaign(ctx, parts[2])
			release = func() error { return leader.Resign(ctx) }
		}
		if err != nil {
			t.Errorf("holder %s: %v", k.holder, err)
			return result{}
		}
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--endpoints=" + ep}, k.args...)...)
	gate := filepath.Join(t.TempDir(), "gate")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GATE=" + gate}
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Error(err)
		return result{}
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	waitFor := func(what string, cond func() bool) bool {
		for !cond() {
			select {
			case <-exited:
				if cond() {
					return true
				}
				t.Errorf("%s exited while waiting for %s; stdout %q stderr %q", bin, what, out.Bytes(), errb.Bytes())
				return false
			case <-ctx.Done():
				t.Errorf("%s: timed out waiting for %s", bin, what)
				return false
			case <-time.After(20 * time.Millisecond): // polling interval
			}
		}
		return true
	}
	count := func(prefix string) int64 {
		r, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return -1
		}
		return r.Count
	}
	ok := true
	for _, s := range k.steps {
		if !ok {
			break
		}
		switch {
		case s.stdoutLines > 0:
			ok = waitFor(fmt.Sprintf("%d lines of output", s.stdoutLines), func() bool {
				return bytes.Count(out.Bytes(), []byte("\n")) >= s.stdoutLines
			})
		case s.keys != "":
			prefix, n, _ := strings.Cut(s.keys, "=")
			ok = waitForKeys(waitFor, count, prefix, n)
		case s.signal != 0:
			pid := cmd.Process.Pid
			if s.group {
				pid = -pid
			}
			_ = syscall.Kill(pid, s.signal)
		case s.release:
			if err := release(); err != nil {
				t.Errorf("release: %v", err)
			}
		case s.proclaim != "":
			if err := leader.Proclaim(ctx, s.proclaim); err != nil {
				t.Errorf("proclaim: %v", err)
			}
		case s.watching:
			// A signal while the client is still reading (not yet
			// watching) makes its retry interceptor log the cancelled
			// read: wait until it watches, so both sides are alike.
			ok = waitFor("a watcher", func() bool { return watcherTotal(ep) > 0 })
		case s.open:
			if err := os.WriteFile(gate, nil, 0o600); err != nil {
				t.Error(err)
			}
		case s.revoke != "":
			r, err := cli.Get(ctx, s.revoke, clientv3.WithPrefix())
			if err != nil || len(r.Kvs) != 1 {
				t.Errorf("find the lease under %s: %v %v", s.revoke, r, err)
				continue
			}
			if _, err := cli.Revoke(ctx, clientv3.LeaseID(r.Kvs[0].Lease)); err != nil {
				t.Errorf("revoke: %v", err)
			}
		}
	}
	select {
	case <-exited:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		t.Errorf("%s %q did not exit", bin, k.args)
	}
	err := waitErr
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Errorf("run %s: %v", bin, err)
	}
	return result{stdout: out.Bytes(), stderr: errb.Bytes(), code: code}
}

func waitForKeys(waitFor func(string, func() bool) bool, count func(string) int64, prefix, n string) bool {
	var want int64
	fmt.Sscan(n, &want)
	return waitFor(fmt.Sprintf("%d keys under %s", want, prefix), func() bool { return count(prefix) == want })
}

// watcherTotal is the server's etcd_debugging_mvcc_watcher_total, or -1.
func watcherTotal(ep string) int {
	resp, err := http.Get("http://" + ep + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	m := regexp.MustCompile(`(?m)^etcd_debugging_mvcc_watcher_total (\d+)$`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
