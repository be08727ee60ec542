package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
)

// --wal-dir keeps the WAL outside the data dir, and a restart finds it there.
func TestWALDir(t *testing.T) {
	walDir := filepath.Join(t.TempDir(), "wal")
	m := framework.NewMember(t, framework.Cairn(t), "n1", "--wal-dir", walDir)
	m.StartAndWait(20 * time.Second)
	c := m.Client3()
	if _, err := c.Put(ctxT(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	m.Stop()
	if segs, _ := filepath.Glob(filepath.Join(walDir, "*.wal")); len(segs) == 0 {
		t.Fatalf("no WAL segment in --wal-dir %s", walDir)
	}
	if _, err := os.Stat(filepath.Join(m.DataDir, "member", "wal")); err == nil {
		t.Fatal("member/wal exists although --wal-dir was given")
	}
	m.StartAndWait(20 * time.Second)
	c = m.Client3()
	defer c.Close()
	if g, err := c.Get(ctxT(t), "k"); err != nil || len(g.Kvs) != 1 {
		t.Fatalf("after restart with --wal-dir: %v %v", g, err)
	}
}

// The configuration can come from ETCD_* variables or a YAML --config-file,
// exactly as etcd's: a member configured only through them serves clients.
func TestConfigFromEnvAndFile(t *testing.T) {
	t.Run("env", func(t *testing.T) {
		m := framework.NewMember(t, framework.Cairn(t), "n1")
		args := m.Args()
		var env []string
		for i := 0; i+1 < len(args); i += 2 {
			name := strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(args[i], "--"), "-", "_"))
			env = append(env, "ETCD_"+name+"="+args[i+1])
		}
		out, _, code := framework.Run(t, env, "", framework.Cairn(t), "--version")
		if code != 0 || !strings.Contains(out, "cairn Version:") {
			t.Fatalf("--version: %d %s", code, out)
		}
		m.Env = env
		startWithArgs(t, m, nil)
	})
	t.Run("file", func(t *testing.T) {
		m := framework.NewMember(t, framework.Cairn(t), "n1")
		file := filepath.Join(t.TempDir(), "cairn.yaml")
		yaml := fmt.Sprintf("name: n1\ndata-dir: %s\nlisten-client-urls: %s\nadvertise-client-urls: %s\n"+
			"listen-peer-urls: %s\ninitial-advertise-peer-urls: %s\ninitial-cluster: n1=%s\nsnapshot-count: 50\n"+
			"heartbeat-interval: 50\nelection-timeout: 500\n",
			m.DataDir, m.Client, m.Client, m.Peer, m.Peer, m.Peer)
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		startWithArgs(t, m, []string{"--config-file", file})
		if !strings.Contains(m.Log(), "loaded server configuration") {
			t.Fatalf("config file not reported as loaded:\n%s", m.Log())
		}
	})
}

// startWithArgs starts m with exactly args (none: configuration from the
// environment only) and checks it serves a write.
func startWithArgs(t *testing.T, m *framework.Member, args []string) {
	t.Helper()
	if args == nil {
		args = []string{}
	}
	m.OverrideArgs = args
	m.StartAndWait(20 * time.Second)
	c := m.Client3()
	defer c.Close()
	if _, err := c.Put(ctxT(t), "configured", "yes"); err != nil {
		t.Fatal(err)
	}
}

// WAL segments before a snapshot are released and purged per --max-wals,
// and the member restarts from the snapshot and the remaining segments
// with all its data.
func TestWALReleaseAndRestart(t *testing.T) {
	m := framework.NewMember(t, framework.Cairn(t), "n1", "--snapshot-count", "20", "--max-wals", "1")
	m.StartAndWait(20 * time.Second)
	c := m.Client3()
	ctx := ctxT(t)
	value := strings.Repeat("w", 1<<20)
	// 150 MiB of puts: at least two WAL segment cuts (64 MB each).
	for i := 0; i < 150; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("big%03d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	walDir := filepath.Join(m.DataDir, "member", "wal")
	deadline := time.Now().Add(10 * time.Second)
	for {
		segs, _ := filepath.Glob(filepath.Join(walDir, "*.wal"))
		if len(segs) > 0 && !strings.HasPrefix(filepath.Base(segs[0]), "0000000000000000-") {
			break // the first segment was released and purged
		}
		if time.Now().After(deadline) {
			t.Fatalf("first WAL segment never purged: %v", segs)
		}
		if _, err := c.Put(ctx, "tick", "x"); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	m.Kill()
	m.StartAndWait(30 * time.Second)
	c = m.Client3()
	defer c.Close()
	g, err := c.Get(ctx, "big", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || g.Count != 150 {
		t.Fatalf("after restart past released WAL segments: %d keys (%v)", g.Count, err)
	}
}
