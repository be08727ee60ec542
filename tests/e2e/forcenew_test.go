package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// Disaster recovery from the seed runbooks: a 3-member etcd 3.6.16 cluster
// loses its majority; cairn restarts one survivor's data dir with
// --force-new-cluster and serves it as a one-member cluster with the same
// member ID, cluster ID and every key.
func TestForceNewClusterOnEtcdMember(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	names := []string{"m1", "m2", "m3"}
	members := make([]*framework.Member, 3)
	var initial []string
	for i, n := range names {
		members[i] = framework.NewMember(t, ref.Etcd, n)
		initial = append(initial, n+"="+members[i].Peer)
	}
	for _, m := range members {
		args := m.Args()
		for i := range args {
			if args[i] == "--initial-cluster" {
				args[i+1] = strings.Join(initial, ",")
			}
		}
		m.OverrideArgs = append(args, "--initial-cluster-token", "force-test")
		m.Start()
	}
	for _, m := range members {
		m.WaitReady(60 * time.Second)
	}
	c := members[0].Client3()
	ctx := ctxT(t)
	for i := 0; i < 40; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("k%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	// A linearizable read through m1 makes sure m1 has applied everything.
	want, err := c.Get(ctx, "k", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx, members[0].Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The majority is lost. The survivors stop cleanly here so that the
	// test is exact: with SIGKILL, entries committed after the survivor's
	// last persisted commit index are dropped by --force-new-cluster, as
	// etcd drops them.
	for _, m := range members {
		m.Stop()
	}

	// Without the flag, cairn starts as one member of the 3-member cluster
	// (as etcd does) and, alone, never gets the quorum it needs to publish
	// itself, so it never serves clients.
	cm := framework.NewMember(t, framework.Cairn(t), "m1")
	cm.DataDir, cm.Client, cm.Peer = members[0].DataDir, members[0].Client, members[0].Peer
	cm.OverrideArgs = members[0].OverrideArgs
	cm.Start()
	if cm.WaitLog("ready to serve client requests", 3*time.Second) {
		t.Fatalf("a lone member of a 3-member cluster became ready:\n%s", cm.Log())
	}
	if !strings.Contains(cm.Log(), "restarting local member") {
		t.Fatalf("the lone member did not start as a member of its cluster:\n%s", cm.Log())
	}
	cm.Stop()

	// cairn on m1's data dir, with m1's original flags plus --force-new-cluster.
	cm.OverrideArgs = append(members[0].OverrideArgs, "--force-new-cluster")
	cm.StartAndWait(30 * time.Second)
	if !cm.WaitLog("forcing restart member", time.Second) {
		t.Fatalf("no 'forcing restart member' log line:\n%s", cm.Log())
	}
	c = cm.Client3()
	ctx = ctxT(t)
	got, err := c.Get(ctx, "k", clientv3.WithPrefix())
	if err != nil || len(got.Kvs) != len(want.Kvs) || got.Header.Revision != want.Header.Revision {
		t.Fatalf("after --force-new-cluster: %d keys at revision %d (want %d at %d): %v",
			len(got.Kvs), got.Header.Revision, len(want.Kvs), want.Header.Revision, err)
	}
	if got.Header.MemberId != st.Header.MemberId || got.Header.ClusterId != st.Header.ClusterId {
		t.Fatalf("identity changed: %+v, etcd had %+v", got.Header, st.Header)
	}
	ml, err := c.MemberList(ctx)
	if err != nil || len(ml.Members) != 1 || ml.Members[0].ID != st.Header.MemberId {
		t.Fatalf("member list after --force-new-cluster: %+v %v", ml, err)
	}
	if _, err := c.Put(ctx, "after", "recovery"); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
	c.Close()

	// A later restart without the flag stays a one-member cluster.
	cm.Stop()
	cm.OverrideArgs = members[0].OverrideArgs
	cm.StartAndWait(30 * time.Second)
	c = cm.Client3()
	defer c.Close()
	if g, err := c.Get(ctxT(t), "after"); err != nil || len(g.Kvs) != 1 {
		t.Fatalf("after restart: %v %v", g, err)
	}
}
