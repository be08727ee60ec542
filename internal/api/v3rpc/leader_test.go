package v3rpc

import (
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A client that requires a leader (clientv3.WithRequireLeader) gets etcd's
// "no leader" error from a member without one; other clients are served.
func TestRequireLeader(t *testing.T) {
	m := &fakeMember{kvs: map[string]string{"k": "v"}, rev: 3}
	cfg, _ := serve(t, m, Options{})
	c := newClient(t, cfg)
	if _, err := c.Get(clientv3.WithRequireLeader(testCtx(t)), "k"); err != nil {
		t.Fatalf("with a leader: %v", err)
	}
	m.noLeader.Store(true)
	if _, err := c.Get(clientv3.WithRequireLeader(testCtx(t)), "k"); !errors.Is(err, rpctypes.ErrNoLeader) {
		t.Fatalf("require leader without one: %v, want %v", err, rpctypes.ErrNoLeader)
	}
	if _, err := c.Get(testCtx(t), "k", clientv3.WithSerializable()); err != nil {
		t.Fatalf("without the requirement: %v", err)
	}
}
