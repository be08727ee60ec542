package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
)

// writeAndKill writes n keys, kills the member and returns the WAL segment
// and the end of its data (the preallocated rest is zeros).
func writeAndKill(t *testing.T, m *framework.Member, n int) (string, int) {
	t.Helper()
	c := m.Client3()
	ctx := ctxT(t)
	for i := 0; i < n; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("k%03d", i), strings.Repeat("v", 100)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	m.Kill()
	segs, _ := filepath.Glob(filepath.Join(m.DataDir, "member", "wal", "*.wal"))
	if len(segs) == 0 {
		t.Fatal("no WAL segment")
	}
	seg := segs[len(segs)-1]
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	end := len(bytes.TrimRight(b, "\x00"))
	return seg, end
}

// A torn last record (a write cut short by a crash) is repaired at start:
// the member comes up with everything before it.
func TestTornWALTailIsRepaired(t *testing.T) {
	m := framework.NewMember(t, framework.Cairn(t), "n1")
	m.StartAndWait(20 * time.Second)
	seg, end := writeAndKill(t, m, 50)
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Zero the last 20 bytes written: the tail of the last record.
	if _, err := f.WriteAt(make([]byte, 20), int64(end-20)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m.StartAndWait(20 * time.Second)
	c := m.Client3()
	defer c.Close()
	g, err := c.Get(ctxT(t), "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || g.Count < 49 {
		t.Fatalf("after repair: %d keys (want at least 49): %v", g.Count, err)
	}
	if _, err := c.Put(ctxT(t), "after", "repair"); err != nil {
		t.Fatal(err)
	}
}

// Corruption before the last record is not a torn write: the member refuses
// to start and names the damaged file, rather than dropping committed data.
func TestCorruptWALMiddleRefusesToStart(t *testing.T) {
	m := framework.NewMember(t, framework.Cairn(t), "n1")
	m.StartAndWait(20 * time.Second)
	seg, end := writeAndKill(t, m, 50)
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(end / 2)
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m.Start()
	select {
	case <-m.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("member started on a corrupt WAL:\n%s", m.Log())
	}
	log := m.Log()
	if !strings.Contains(log, filepath.Base(seg)) {
		t.Fatalf("the failure does not name the WAL file %s:\n%s", filepath.Base(seg), log)
	}
	if m.ExitErr() == nil {
		t.Fatal("exit status 0 on a corrupt WAL")
	}
}
