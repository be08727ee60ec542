package ctl_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// watchCase is a watch command line run by both binaries. A watch runs
// until the server cancels it, so most cases are stopped after `stop`
// (both sides killed alike); what they printed by then — the replayed
// history, which both print at once — is compared. hold keeps stdin open
// until the stop (interactive watches), instead of closing it at once.
type watchCase struct {
	args  []string
	env   []string
	stdin string
	hold  bool
	stop  time.Duration
}

func wc(args ...string) watchCase { return watchCase{args: args} }

func (k watchCase) stopped() watchCase           { k.stop = 700 * time.Millisecond; return k }
func (k watchCase) with(env ...string) watchCase { k.env = env; return k }
func (k watchCase) in(stdin string, hold bool) watchCase {
	k.stdin, k.hold = stdin, hold
	if hold {
		k.stop = 700 * time.Millisecond
	}
	return k
}

// watchSeed is written to both servers, revisions 2 to 8.
func watchSeed(t *testing.T, ep string) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, op := range []clientv3.Op{
		clientv3.OpPut("w/a", "1"), clientv3.OpPut("w/b", "2"), clientv3.OpPut("w/a", "11"),
		clientv3.OpDelete("w/a"), clientv3.OpPut("w/q \"k\"", "multi\nline"),
	} {
		if _, err := cli.Do(ctx, op); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Txn(ctx).Then(clientv3.OpPut("w/c", "3"), clientv3.OpPut("w/d", "\x00\xff")).Commit(); err != nil {
		t.Fatal(err)
	}
	if r, err := cli.Put(ctx, "other", "x"); err != nil || r.Header.Revision != 8 {
		t.Fatalf("seed ends at %v, %v; want revision 8", r, err)
	}
}

func watchCases() (before, after []watchCase) {
	show := `echo "$ETCD_WATCH_REVISION $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE"`
	for _, f := range []string{"simple", "json", "fields", "protobuf", "table"} {
		before = append(before, wc("watch", "--rev", "2", "--prefix", "w/", "-w", f).stopped())
	}
	before = append(before,
		wc("watch", "--rev", "2", "--prefix", "w/", "--prev-kv").stopped(),
		wc("watch", "--rev", "2", "--prefix", "w/", "--prev-kv", "-w", "fields").stopped(),
		wc("watch", "--rev", "2", "--prefix", "w/", "--prev-kv", "-w", "json").stopped(),
		wc("watch", "--rev", "2", "--prefix", "w/", "--hex").stopped(),
		wc("watch", "--rev", "2", "w/a").stopped(),
		wc("watch", "w/a", "--rev", "3", "w/c").stopped(),
		wc("watch", "--rev", "6", "--prefix", "").stopped(),
		wc("watch", "--rev", "8", "other").with("ETCDCTL_WATCH_KEY=", "ETCDCTL_WATCH_RANGE_END=").stopped(),
		wc("watch", "--rev", "2", "--prefix", "w/", "--", "sh", "-c", show).stopped(),
		wc("watch", "--rev", "2", "--", "sh", "-c", show).with("ETCDCTL_WATCH_KEY=w/", "ETCDCTL_WATCH_RANGE_END=w0").stopped(),
		wc("watch", "--rev", "2").with("ETCDCTL_WATCH_KEY=w/a").stopped(),
		wc("watch", "--rev", "7", "--prefix", "w/", "--", "sh", "-c", "exit 3").stopped(),
		// interactive
		wc("watch", "-i").in("watch --rev 2 --prefix w/ --prev-kv\n", true),
		wc("watch", "-i", "--rev", "5").in("watch w/a -- sh -c 'echo $ETCD_WATCH_KEY'\n", true),
		wc("watch", "-i").in("watch --rev 4 -- echo hi\n", true).with("ETCDCTL_WATCH_KEY=w/a"),
		wc("watch", "-i").in("foo\n\nwatch\nwatch a b --prefix\nwatch x --\nprogress\n", false),
		wc("watch", "-i").in("watch --bogus\n", false),
		wc("watch", "-i").in("watch a \"unterminated\n", false),
		wc("watch", "-i").in("watch a b --prefix\n", false).with("ETCDCTL_WATCH_KEY=w/a"),
		// argument errors
		wc("watch"), wc("watch", "a", "b", "--prefix"), wc("watch", "a", "--"), wc("watch", "--rev", "x", "a"),
		wc("watch", "a").with("ETCDCTL_WATCH_RANGE_END=b"),
		wc("watch", "a").with("ETCDCTL_WATCH_KEY=b"),
		wc("watch", "a", "--", "echo").with("ETCDCTL_WATCH_KEY=b"),
		wc("watch", "--rev", "8", "other", "b", "c").stopped(),
	)
	// after `compaction 4`: a watch from before it is cancelled; from it, it
	// replays the delete at 5 and what follows.
	for _, f := range []string{"simple", "json", "fields", "protobuf"} {
		after = append(after, wc("watch", "--rev", "2", "w/a", "-w", f))
	}
	after = append(after,
		wc("watch", "--rev", "4", "--prefix", "w/").stopped(),
		wc("watch", "-i").in("watch --rev 3 w/a\n", true),
	)
	return before, after
}

// TestCompatWatch compares `watch` of etcdctl 3.6.16 and cairnctl, each on
// its own freshly started server (CAIRNCTL_COMPAT_SERVER picks the pair, as
// for TestCompatWithEtcdctl) holding the same history.
func TestCompatWatch(t *testing.T) {
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
	for i := range eps {
		ep, stop, _ := pair[i](t, filepath.Join(root, fmt.Sprintf("server%d", i)))
		t.Cleanup(stop)
		eps[i] = ep
		watchSeed(t, ep)
	}
	norm := map[string]string{eps[0]: "<ep>", eps[1]: "<ep>"}
	run := func(t *testing.T, k watchCase) {
		var ref, our result
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); ref = runWatch(t, rel.Etcdctl, eps[0], k) }()
		go func() { defer wg.Done(); our = runWatch(t, cairnctl, eps[1], k) }()
		wg.Wait()
		t.Logf("etcdctl exit %d\nstdout:\n%sstderr:\n%s", ref.code,
			quoteLines(normalise(ref.stdout, norm)), quoteLines(normalise(ref.stderr, norm)))
		compareResults(t, ref, our, norm)
	}
	before, after := watchCases()
	for i, k := range before {
		t.Run(fmt.Sprintf("%02d %q", i, k.args), func(t *testing.T) { run(t, k) })
	}
	for _, ep := range eps {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = cli.Compact(ctx, 4)
		cancel()
		cli.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, k := range after {
		t.Run(fmt.Sprintf("compacted %02d %q", i, k.args), func(t *testing.T) { run(t, k) })
	}
}

// runWatch runs one watch case against ep: killed after k.stop when set
// (exit code -1 on both sides), stdin closed at once or held until then.
func runWatch(t *testing.T, bin, ep string, k watchCase) result {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"--endpoints=" + ep}, k.args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, k.env...)
	var out, errb lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdin io.WriteCloser
	if k.hold {
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			t.Error(err)
			return result{}
		}
	} else {
		cmd.Stdin = strings.NewReader(k.stdin)
	}
	if err := cmd.Start(); err != nil {
		t.Error(err)
		return result{}
	}
	if stdin != nil {
		_, _ = io.WriteString(stdin, k.stdin)
	}
	done, exited := make(chan error, 1), make(chan struct{})
	go func() {
		e := cmd.Wait()
		close(exited)
		done <- e
	}()
	var err error
	if k.stop > 0 {
		select {
		case err = <-done:
		case <-settled(&out, &errb, k.stop, exited):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group: exec'd commands too
			err = <-done
		}
	} else {
		err = <-done
	}
	if stdin != nil {
		stdin.Close()
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Errorf("run %s: %v", bin, err)
	}
	return result{stdout: out.Bytes(), stderr: errb.Bytes(), code: code}
}

// settled closes its channel once a watch that never ends by itself has
// printed what it will: its output has not changed for quiet, and it has
// printed something or silentFloor has passed (on a loaded machine the
// process may take longer than quiet to start and connect). A fixed window
// made the test flaky under load.
func settled(out, errb *lockedBuffer, quiet time.Duration, exited <-chan struct{}) <-chan struct{} {
	const silentFloor = 5 * time.Second
	c := make(chan struct{})
	go func() {
		defer close(c)
		start := time.Now()
		last, changed := -1, time.Now()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-exited:
				return
			case <-tick.C:
			}
			n := out.Len() + errb.Len()
			if n != last {
				last, changed = n, time.Now()
				continue
			}
			if time.Since(changed) >= quiet && (n > 0 || time.Since(start) >= silentFloor) {
				return
			}
		}
	}()
	return c
}

// lockedBuffer is a bytes.Buffer a process writes while the test reads its
// length.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}
