package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
)

func startCairn(t *testing.T, extra ...string) *framework.Member {
	t.Helper()
	m := framework.NewMember(t, framework.Cairn(t), "n1", extra...)
	m.StartAndWait(20 * time.Second)
	return m
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestKVThroughOfficialClient(t *testing.T) {
	m := startCairn(t)
	c := m.Client3()
	defer c.Close()
	ctx := ctxT(t)

	p1, err := c.Put(ctx, "foo", "bar")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := c.Put(ctx, "foo", "baz", clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if p2.PrevKv == nil || string(p2.PrevKv.Value) != "bar" || p2.Header.Revision != p1.Header.Revision+1 {
		t.Fatalf("put prev kv: %+v", p2)
	}
	g, err := c.Get(ctx, "foo")
	if err != nil || len(g.Kvs) != 1 || string(g.Kvs[0].Value) != "baz" || g.Kvs[0].Version != 2 ||
		g.Kvs[0].CreateRevision != p1.Header.Revision || g.Kvs[0].ModRevision != p2.Header.Revision {
		t.Fatalf("get: %+v %v", g, err)
	}
	// Serializable read sees the same.
	if g, err := c.Get(ctx, "foo", clientv3.WithSerializable()); err != nil || string(g.Kvs[0].Value) != "baz" {
		t.Fatalf("serializable get: %+v %v", g, err)
	}
	for _, k := range []string{"a/1", "a/2", "a/3"} {
		if _, err := c.Put(ctx, k, "v-"+k); err != nil {
			t.Fatal(err)
		}
	}
	g, err = c.Get(ctx, "a/", clientv3.WithPrefix(), clientv3.WithLimit(2), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
	if err != nil || g.Count != 3 || !g.More || len(g.Kvs) != 2 || string(g.Kvs[0].Key) != "a/3" {
		t.Fatalf("prefix get: %+v %v", g, err)
	}
	txn, err := c.Txn(ctx).If(clientv3.Compare(clientv3.Value("foo"), "=", "baz")).
		Then(clientv3.OpPut("foo", "qux"), clientv3.OpGet("a/", clientv3.WithPrefix(), clientv3.WithCountOnly())).
		Else(clientv3.OpDelete("foo")).Commit()
	if err != nil || !txn.Succeeded || txn.Responses[1].GetResponseRange().Count != 3 {
		t.Fatalf("txn: %+v %v", txn, err)
	}
	d, err := c.Delete(ctx, "a/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	if err != nil || d.Deleted != 3 || len(d.PrevKvs) != 3 {
		t.Fatalf("delete: %+v %v", d, err)
	}
	rev := d.Header.Revision
	if _, err := c.Compact(ctx, rev-1, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "foo", clientv3.WithRev(rev-2)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("read at compacted revision: %v", err)
	}
	if _, err := c.Get(ctx, "foo", clientv3.WithRev(rev+100)); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Fatalf("read at future revision: %v", err)
	}
	if _, err := c.Compact(ctx, rev-1); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("compact twice: %v", err)
	}
	st, err := c.Status(ctx, m.Endpoint())
	if err != nil || st.Version != "3.6.0" || st.Leader != st.Header.MemberId || st.RaftAppliedIndex == 0 || st.DbSize == 0 {
		t.Fatalf("status: %+v %v", st, err)
	}
	hk, err := c.HashKV(ctx, m.Endpoint(), 0)
	if err != nil || hk.Hash == 0 || hk.CompactRevision != rev-1 {
		t.Fatalf("hashkv: %+v %v", hk, err)
	}
}

func TestKVBadInput(t *testing.T) {
	m := startCairn(t, "--max-txn-ops", "4", "--max-request-bytes", "1024")
	c := m.Client3()
	defer c.Close()
	ctx := ctxT(t)

	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"empty key put", func() error { _, err := c.Put(ctx, "", "v"); return err }, rpctypes.ErrEmptyKey},
		{"empty key get", func() error { _, err := c.Get(ctx, ""); return err }, rpctypes.ErrEmptyKey},
		{"empty key delete", func() error { _, err := c.Delete(ctx, ""); return err }, rpctypes.ErrEmptyKey},
		{"too large", func() error { _, err := c.Put(ctx, "big", strings.Repeat("x", 2048)); return err }, rpctypes.ErrRequestTooLarge},
		{"too many ops", func() error {
			ops := []clientv3.Op{}
			for i := 0; i < 5; i++ {
				ops = append(ops, clientv3.OpPut("k"+string(rune('a'+i)), "v"))
			}
			_, err := c.Txn(ctx).Then(ops...).Commit()
			return err
		}, rpctypes.ErrTooManyOps},
		{"duplicate key", func() error {
			_, err := c.Txn(ctx).Then(clientv3.OpPut("k", "1"), clientv3.OpPut("k", "2")).Commit()
			return err
		}, rpctypes.ErrDuplicateKey},
		{"put over delete in txn", func() error {
			_, err := c.Txn(ctx).Then(clientv3.OpDelete("a", clientv3.WithPrefix()), clientv3.OpPut("ab", "2")).Commit()
			return err
		}, rpctypes.ErrDuplicateKey},
		{"ignore value on missing key", func() error {
			_, err := c.Put(ctx, "missing", "", clientv3.WithIgnoreValue())
			return err
		}, rpctypes.ErrKeyNotFound},
		{"value with ignore value", func() error {
			_, err := c.Put(ctx, "missing", "v", clientv3.WithIgnoreValue())
			return err
		}, rpctypes.ErrValueProvided},
		{"lease that does not exist", func() error {
			_, err := c.Put(ctx, "k", "v", clientv3.WithLease(12345))
			return err
		}, rpctypes.ErrLeaseNotFound},
		{"future revision", func() error { _, err := c.Get(ctx, "k", clientv3.WithRev(1000)); return err }, rpctypes.ErrFutureRev},
		{"compact future", func() error { _, err := c.Compact(ctx, 1000); return err }, rpctypes.ErrFutureRev},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// None of the refused requests changed anything.
	g, err := c.Get(ctx, "", clientv3.WithFromKey())
	if err != nil || len(g.Kvs) != 0 || g.Header.Revision != 1 {
		t.Fatalf("store changed by refused requests: %+v %v", g, err)
	}
}
