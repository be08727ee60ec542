package e2e

import (
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// A single-member data dir written by etcd 3.6.16 starts under cairn in
// place, with the same member ID, cluster ID, keys and revision.
func TestEtcdDataDirStartsUnderCairn(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	for _, snapCount := range []string{"10000", "20"} {
		t.Run("snapshot-count="+snapCount, func(t *testing.T) {
			e := framework.NewMember(t, ref.Etcd, "n1", "--snapshot-count", snapCount)
			e.StartAndWait(30 * time.Second)
			c := e.Client3()
			ctx := ctxT(t)
			for i := 0; i < 60; i++ {
				if _, err := c.Put(ctx, fmt.Sprintf("key%03d", i), fmt.Sprintf("value%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.Delete(ctx, "key000"); err != nil {
				t.Fatal(err)
			}
			want, err := c.Get(ctx, "key", clientv3.WithPrefix())
			if err != nil {
				t.Fatal(err)
			}
			st, err := c.Status(ctx, e.Endpoint())
			if err != nil {
				t.Fatal(err)
			}
			hk, err := c.HashKV(ctx, e.Endpoint(), 0)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			e.Stop()

			// Same data dir, same flags, now cairn.
			m := framework.NewMember(t, framework.Cairn(t), "n1", "--snapshot-count", snapCount)
			m.DataDir, m.Client, m.Peer = e.DataDir, e.Client, e.Peer
			m.StartAndWait(30 * time.Second)
			c = m.Client3()
			defer c.Close()
			got, err := c.Get(ctx, "key", clientv3.WithPrefix())
			if err != nil {
				t.Fatal(err)
			}
			if got.Header.Revision != want.Header.Revision || got.Header.MemberId != st.Header.MemberId ||
				got.Header.ClusterId != st.Header.ClusterId || len(got.Kvs) != len(want.Kvs) {
				t.Fatalf("cairn on etcd's data dir: header %+v (etcd %+v), %d keys (etcd %d)", got.Header, want.Header, len(got.Kvs), len(want.Kvs))
			}
			for i := range want.Kvs {
				if !reflect.DeepEqual(want.Kvs[i], got.Kvs[i]) {
					t.Fatalf("kv %d: cairn %+v, etcd %+v", i, got.Kvs[i], want.Kvs[i])
				}
			}
			hk2, err := c.HashKV(ctx, m.Endpoint(), 0)
			if err != nil || hk2.Hash != hk.Hash {
				t.Fatalf("hashkv: cairn %d, etcd %d (%v)", hk2.Hash, hk.Hash, err)
			}
			// And it keeps working: a write lands at the next revision.
			p, err := c.Put(ctx, "after", "migration")
			if err != nil || p.Header.Revision != want.Header.Revision+1 {
				t.Fatalf("write after migration: %+v %v", p, err)
			}
		})
	}
}

// etcd's own tools read what cairn writes: etcdutl snapshot status opens
// the backend, and etcd-dump-logs decodes the WAL and the snapshots.
func TestEtcdToolsReadCairnDataDir(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	tools := refs.EtcdTools(t)
	m := framework.NewMember(t, framework.Cairn(t), "n1", "--snapshot-count", "30")
	m.StartAndWait(20 * time.Second)
	c := m.Client3()
	ctx := ctxT(t)
	for i := 0; i < 50; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("k%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	g, err := c.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	m.Stop()

	out, errOut, code := framework.Run(t, nil, "", ref.Etcdutl, "snapshot", "status", filepath.Join(m.DataDir, "member", "snap", "db"), "-w", "json")
	if code != 0 {
		t.Fatalf("etcdutl snapshot status: exit %d\n%s%s", code, out, errOut)
	}
	wantRev := fmt.Sprintf(`"revision":%d`, g.Header.Revision)
	if !strings.Contains(out, wantRev) || !strings.Contains(out, `"totalKey":50`) || !strings.Contains(out, `"version":"3.6.0"`) {
		t.Fatalf("etcdutl snapshot status: %s (want %s, 50 keys, version 3.6.0)", out, wantRev)
	}

	out, errOut, code = framework.Run(t, nil, "", tools.EtcdDumpLogs, m.DataDir)
	if code != 0 {
		t.Fatalf("etcd-dump-logs: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"Snapshot:", "WAL metadata:", "nodeID=", "clusterID="} {
		if !strings.Contains(out, want) {
			t.Fatalf("etcd-dump-logs output lacks %q:\n%s", want, out)
		}
	}
	// Every put after the newest snapshot appears as a decoded request.
	puts := regexp.MustCompile(`(?m)^\s*\d+\s+\d+\s+norm\s+header:<ID:\d+ > put:<key:"k\d\d" value:"v" >`).FindAllString(out, -1)
	if len(puts) == 0 {
		t.Fatalf("etcd-dump-logs decoded no put entries:\n%s", out)
	}
}
