package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// loadWriter puts unique keys through a client until stopped and records
// what was acknowledged.
type loadWriter struct {
	mu    sync.Mutex
	acked map[string]string
	errs  int
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startLoad(cl *clientv3.Client, writers int) *loadWriter {
	lw := &loadWriter{acked: map[string]string{}, stop: make(chan struct{})}
	for w := 0; w < writers; w++ {
		lw.wg.Add(1)
		go func() {
			defer lw.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-lw.stop:
					return
				default:
				}
				k, v := fmt.Sprintf("load/w%d/%06d", w, i), fmt.Sprint(i)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := cl.Put(ctx, k, v)
				cancel()
				lw.mu.Lock()
				if err == nil {
					lw.acked[k] = v
				} else {
					lw.errs++
				}
				lw.mu.Unlock()
			}
		}()
	}
	return lw
}

func (lw *loadWriter) count() int { lw.mu.Lock(); defer lw.mu.Unlock(); return len(lw.acked) }

func (lw *loadWriter) finish() { close(lw.stop); lw.wg.Wait() }

// checkAllAcked reads every acknowledged key back through m.
func (lw *loadWriter) checkAllAcked(t *testing.T, m *framework.Member) {
	t.Helper()
	c := m.Client3()
	defer c.Close()
	g, err := c.Get(ctxT(t), "load/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range g.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for k, v := range lw.acked {
		if got[k] != v {
			t.Fatalf("acknowledged %s=%s lost (read %q through %s)", k, v, got[k], m.Name)
		}
	}
}

// sameState checks every member reports the same revision and HashKV.
func sameState(t *testing.T, c *framework.Cluster) {
	t.Helper()
	var rev int64
	var hash uint32
	waitUntil(t, "members to converge", func() bool {
		rev, hash = 0, 0
		for i, m := range c.Members {
			cl := m.Client3()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			st, err := cl.Status(ctx, m.Client)
			if err != nil {
				cancel()
				cl.Close()
				return false
			}
			hk, err := cl.HashKV(ctx, m.Client, st.Header.Revision)
			cancel()
			cl.Close()
			if err != nil {
				return false
			}
			if i == 0 {
				rev, hash = st.Header.Revision, hk.Hash
			} else if st.Header.Revision != rev || hk.Hash != hash {
				return false
			}
		}
		return true
	})
}

// A cluster of etcd 3.6.16 and cairn members: they bootstrap together,
// every member serves writes and linearizable reads, and all end with the
// same revision and HashKV.
func TestMixedClusterServes(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	c := framework.NewCluster(t, []string{ref.Etcd, framework.Cairn(t)}, 3) // etcd, cairn, etcd
	c.Start(60 * time.Second)
	for i, m := range c.Members {
		cl := m.Client3()
		for j := 0; j < 20; j++ {
			if _, err := cl.Put(ctxT(t), fmt.Sprintf("k/%d/%02d", i, j), m.Name); err != nil {
				t.Fatalf("put through %s: %v", m.Name, err)
			}
		}
		cl.Close()
	}
	for _, m := range c.Members {
		cl := m.Client3()
		g, err := cl.Get(ctxT(t), "k/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		cl.Close()
		if err != nil || g.Count != 60 {
			t.Fatalf("%s: %v %v", m.Name, g, err)
		}
	}
	sameState(t, c)
	// Leadership moves to the cairn member and back; the cluster keeps
	// serving.
	cl := c.Members[0].Client3()
	defer cl.Close()
	st, err := cl.Status(ctxT(t), c.Members[1].Client)
	if err != nil {
		t.Fatal(err)
	}
	lead := c.Leader(10 * time.Second)
	if lead != 1 {
		// cairnctl move-leader, given every endpoint, finds the leader and
		// asks it to hand over (etcdctl's behaviour and output).
		target := fmt.Sprintf("%x", st.Header.MemberId)
		out, errOut, code := framework.Run(t, nil, "", framework.Cairnctl(t), "--endpoints", strings.Join(c.Endpoints(), ","), "move-leader", target)
		if code != 0 || out != fmt.Sprintf("Leadership transferred from %x to %s\n", memberID(t, c.Members[lead]), target) {
			t.Fatalf("cairnctl move-leader: exit %d\n%s%s", code, out, errOut)
		}
	}
	waitUntil(t, "cairn to lead", func() bool { return c.Leader(10*time.Second) == 1 })
	for j := 0; j < 20; j++ {
		if _, err := cl.Put(ctxT(t), fmt.Sprintf("k/cairn-leads/%02d", j), "v"); err != nil {
			t.Fatal(err)
		}
	}
	sameState(t, c)
}

// A running etcd 3.6.16 cluster under write load is migrated to cairn one
// member at a time on its own data dirs (stop, start cairn with the same
// flags, wait until healthy, next), then rolled back to etcd the same way.
// Clients see no error beyond retried leader changes, no acknowledged write
// is lost, and IDs, keys and revisions carry over.
func TestRollingMigrationEtcdToCairnAndBack(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	c := framework.NewCluster(t, []string{ref.Etcd}, 3)
	c.Start(60 * time.Second)
	wantCID, wantIDs := clusterIDs(t, c.Members[0])
	cl := c.Client()
	defer cl.Close()
	lw := startLoad(cl, 4)
	waitUntil(t, "load before migration", func() bool { return lw.count() > 200 })
	swap := func(bin string) {
		for _, m := range c.Members {
			m.Stop()
			m.Bin = bin
			m.Start()
			m.WaitReady(60 * time.Second)
			before := lw.count()
			waitUntil(t, "writes after swapping "+m.Name, func() bool { return lw.count() > before+50 })
		}
	}
	swap(framework.Cairn(t))
	for _, m := range c.Members {
		cid, ids := clusterIDs(t, m)
		if cid != wantCID || fmt.Sprint(ids) != fmt.Sprint(wantIDs) {
			t.Fatalf("after migration %s reports cluster %x members %x, want %x %x", m.Name, cid, ids, wantCID, wantIDs)
		}
	}
	swap(ref.Etcd)
	lw.finish()
	for _, m := range c.Members {
		lw.checkAllAcked(t, m)
	}
	sameState(t, c)
	t.Logf("%d writes acknowledged, %d failed (retried leader changes)", lw.count(), lw.errs)
}

// A cairn member joins a running etcd 3.6.16 cluster the way seed 001 adds a
// member: `etcdctl member add` against the cluster, then the new member
// starts with --initial-cluster-state existing and the printed
// --initial-cluster. It catches up, serves reads, and all four members end
// with the same revision and HashKV.
func TestCairnJoinsEtcdCluster(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	c := framework.NewCluster(t, []string{ref.Etcd}, 4)
	joiner := c.Members[3]
	c.Members = c.Members[:3]
	var pairs []string
	for _, m := range c.Members {
		pairs = append(pairs, m.Name+"="+m.Peer)
	}
	for _, m := range c.Members {
		m.InitialCluster = strings.Join(pairs, ",")
	}
	c.Start(60 * time.Second)
	cl := c.Members[0].Client3()
	defer cl.Close()
	for i := 0; i < 50; i++ {
		if _, err := cl.Put(ctxT(t), fmt.Sprintf("before/%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	// etcd refuses a member add until its peers have been connected for
	// 5 s ("unhealthy cluster"): retry until it takes it.
	var out string
	waitUntil(t, "etcdctl member add to succeed", func() bool {
		o, _, code := framework.Run(t, nil, "", ref.Etcdctl, "--endpoints", strings.Join(c.Endpoints(), ","),
			"member", "add", joiner.Name, "--peer-urls", joiner.Peer)
		out = o
		return code == 0
	})
	var initial string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "ETCD_INITIAL_CLUSTER="); ok {
			initial = strings.Trim(v, `"`)
		}
	}
	if initial == "" {
		t.Fatalf("no ETCD_INITIAL_CLUSTER in:\n%s", out)
	}
	joiner.Bin = framework.Cairn(t)
	joiner.InitialCluster = initial
	joiner.Extra = append(joiner.Extra, "--initial-cluster-state", "existing")
	joiner.StartAndWait(60 * time.Second)
	c.Members = append(c.Members, joiner)
	jc := joiner.Client3()
	defer jc.Close()
	g, err := jc.Get(ctxT(t), "before/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || g.Count != 50 {
		t.Fatalf("the joined member reads %v, %v", g, err)
	}
	if _, err := jc.Put(ctxT(t), "through/cairn", "v"); err != nil {
		t.Fatal(err)
	}
	sameState(t, c)
}
