package e2e

import (
	"bytes"
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
)

// docBlock returns the indented code block that follows the marker
// "<!-- name -->" in docs/operations.md, without its indentation.
func docBlock(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- "+name+" -->\n")
	if !ok {
		t.Fatalf("docs/operations.md has no %q block", name)
	}
	var lines []string
	for _, l := range strings.Split(rest, "\n") {
		code, ok := strings.CutPrefix(l, "    ")
		if !ok {
			break
		}
		lines = append(lines, code)
	}
	return strings.Join(lines, "\n") + "\n"
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServiceDiscoveryExample runs the service-discovery example of
// docs/operations.md as written, with cairnctl: two instances register,
// a client lists and watches them, and an instance that stops is gone
// once its lease expires.
func TestServiceDiscoveryExample(t *testing.T) {
	m := startCairn(t)
	register, discover := docBlock(t, "discovery:register"), docBlock(t, "discovery:discover")
	env := append(os.Environ(),
		"PATH="+filepath.Dir(framework.Cairnctl(t))+":"+os.Getenv("PATH"),
		"ETCDCTL_ENDPOINTS="+m.Client)
	start := func(script string, extra ...string) (*exec.Cmd, *lockedBuffer) {
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(append([]string{}, env...), extra...)
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		})
		return cmd, out
	}
	c := m.Client3()
	defer c.Close()
	waitCount := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			r, err := c.Get(ctxT(t), "services/web/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err == nil && r.Count == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("never %d instances registered (%v, %v)", n, r, err)
			}
			time.Sleep(50 * time.Millisecond) // polling interval
		}
	}
	waitOutput := func(out *lockedBuffer, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for out.String() != want {
			if time.Now().After(deadline) {
				t.Fatalf("discovery printed\n%s\nwant\n%s", out.String(), want)
			}
			time.Sleep(50 * time.Millisecond) // polling interval
		}
	}

	a, aOut := start(register, "ADDR=10.0.0.7:8080")
	waitCount(1)
	_, out := start(discover)
	listed := "services/web/10.0.0.7:8080\n{\"addr\":\"10.0.0.7:8080\"}\n"
	waitOutput(out, listed)
	_, _ = start(register, "ADDR=10.0.0.8:8080")
	waitCount(2)
	added := listed + "PUT\nservices/web/10.0.0.8:8080\n{\"addr\":\"10.0.0.8:8080\"}\n"
	waitOutput(out, added)
	// The first instance stops: its keep-alive ends, its lease expires.
	stopped := time.Now()
	if err := a.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitOutput(out, added+"DELETE\nservices/web/10.0.0.7:8080\n\n") // a delete prints an empty value
	if took := time.Since(stopped); took > 10*time.Second {
		t.Errorf("the stopped instance was gone after %v, want within its 5 s lease and a little", took)
	}
	if s := aOut.String(); s != "OK\n" {
		t.Errorf("the register script printed %q, want the put's OK only", s)
	}
}
