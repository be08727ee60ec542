package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnkv/cairn/tests/framework"
)

// mountTmpfs mounts a small tmpfs for the test, or skips when the test
// cannot mount (not root, or no mount permission in this sandbox).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// On a full disk, writes are refused with a clear error while reads go on;
// nothing acknowledged is lost, and writes resume once space is freed.
func TestFullDiskRefusesWrites(t *testing.T) {
	disk := mountTmpfs(t, "300m")
	m := framework.NewMember(t, framework.Cairn(t), "n1")
	m.DataDir = filepath.Join(disk, "n1.etcd")
	m.StartAndWait(20 * time.Second)
	c := m.Client3()
	defer c.Close()
	ctx := ctxT(t)

	// Leave about 12 MiB above the member's reserve (a WAL segment, four
	// maximal requests and 8 MiB), then write 512 KiB values until refused.
	var st syscall.Statfs_t
	if err := syscall.Statfs(disk, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	reserve := int64(64*1000*1000 + 4*1572864 + 8<<20)
	filler := filepath.Join(disk, "filler")
	if out, err := exec.Command("fallocate", "-l", fmt.Sprint(free-reserve-12<<20), filler).CombinedOutput(); err != nil {
		t.Fatalf("fallocate: %v %s", err, out)
	}
	value := strings.Repeat("x", 512*1024)
	var acked []string
	var refusal error
	for i := 0; i < 400; i++ {
		key := fmt.Sprintf("big%03d", i)
		if _, err := c.Put(ctx, key, value); err != nil {
			refusal = err
			break
		}
		acked = append(acked, key)
	}
	if refusal == nil {
		t.Fatalf("disk never refused a write after %d puts of 512 KiB", len(acked))
	}
	if s, ok := status.FromError(refusal); !ok || s.Code() != codes.ResourceExhausted || !strings.Contains(s.Message(), "no space left") {
		t.Fatalf("refusal: %v (want ResourceExhausted, no space left)", refusal)
	}
	t.Logf("%d writes acknowledged, then: %v", len(acked), refusal)
	if len(acked) == 0 {
		t.Fatal("no write was accepted before the disk filled")
	}
	// Still serving reads.
	if g, err := c.Get(ctx, "big", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || g.Count != int64(len(acked)) {
		t.Fatalf("reads on a full disk: %v %v", g, err)
	}
	select {
	case <-m.Done():
		t.Fatalf("member exited on a full disk:\n%s", m.Log())
	default:
	}
	// Free space: writes resume, and everything survives a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.Put(ctx, "after", "space")
		if err == nil {
			break
		}
		if time.Now().After(deadline) || !errors.Is(err, refusal) && status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("write after freeing space: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Close()
	m.Stop()
	m.StartAndWait(20 * time.Second)
	c2 := m.Client3()
	defer c2.Close()
	g, err := c2.Get(ctx, "big", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil || len(g.Kvs) != len(acked) {
		t.Fatalf("after restart: %d keys, want %d (%v)", len(g.Kvs), len(acked), err)
	}
}
