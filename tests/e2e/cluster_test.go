package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// clusterIDs returns the cluster ID and the sorted member IDs as member m
// reports them.
func clusterIDs(t *testing.T, m *framework.Member) (uint64, []uint64) {
	t.Helper()
	c := m.Client3()
	defer c.Close()
	ml, err := c.MemberList(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, mm := range ml.Members {
		ids = append(ids, mm.ID)
	}
	slices.Sort(ids)
	return ml.Header.ClusterId, ids
}

// Seed 002's static bootstrap: three members started from the same
// --initial-cluster, in any order, form one cluster, with the member and
// cluster IDs etcd 3.6.16 derives from the same flags.
func TestStaticBootstrapThreeMembers(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	c := framework.NewCluster(t, []string{ref.Etcd}, 3)
	c.Start(60 * time.Second)
	wantCID, wantIDs := clusterIDs(t, c.Members[0])
	for _, m := range c.Members {
		m.Stop()
	}
	// The same flags and addresses, fresh data dirs, now cairn, started in
	// reverse order.
	for i := len(c.Members) - 1; i >= 0; i-- {
		m := c.Members[i]
		m.Bin = framework.Cairn(t)
		m.DataDir = filepath.Join(t.TempDir(), m.Name+".cairn")
		m.Start()
	}
	for _, m := range c.Members {
		m.WaitReady(60 * time.Second)
	}
	for _, m := range c.Members {
		cid, ids := clusterIDs(t, m)
		if cid != wantCID || !slices.Equal(ids, wantIDs) {
			t.Fatalf("%s: cluster %x members %x; etcd derived cluster %x members %x", m.Name, cid, ids, wantCID, wantIDs)
		}
	}
	// A write through any member is read back through every other.
	for i, m := range c.Members {
		cl := m.Client3()
		if _, err := cl.Put(ctxT(t), fmt.Sprintf("via-%d", i), m.Name); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	for _, m := range c.Members {
		cl := m.Client3()
		g, err := cl.Get(ctxT(t), "via-", clientv3.WithPrefix())
		cl.Close()
		if err != nil || g.Count != 3 {
			t.Fatalf("%s: %v, %v", m.Name, g, err)
		}
	}
}

// clusterTargets are the implementations a cluster test runs on: cairn,
// and etcd 3.6.16 to keep the test itself honest. CAIRN_CLUSTER_TARGETS=cairn
// runs cairn only.
func clusterTargets(t *testing.T) []struct{ name, bin string } {
	out := []struct{ name, bin string }{{"cairn", framework.Cairn(t)}}
	if os.Getenv("CAIRN_CLUSTER_TARGETS") != "cairn" {
		out = append(out, struct{ name, bin string }{"etcd-" + refs.Default, refs.EtcdRelease(t, refs.Default).Etcd})
	}
	return out
}

// Killing the leader of three: a new leader is elected, clients that retry
// go on, and no acknowledged write is lost; with a majority down writes fail
// within the request timeout and serializable reads still answer; when the
// members return the cluster heals on its own.
func TestLeaderKillAndMajorityLoss(t *testing.T) {
	for _, tg := range clusterTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			c := framework.NewCluster(t, []string{tg.bin}, 3)
			c.Start(60 * time.Second)
			cl := c.Client()
			defer cl.Close()

			var (
				mu    sync.Mutex
				acked = map[string]string{}
			)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						k, v := fmt.Sprintf("w%d-%05d", w, i), fmt.Sprint(i)
						ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
						_, err := cl.Put(ctx, k, v)
						cancel()
						if err == nil {
							mu.Lock()
							acked[k] = v
							mu.Unlock()
						}
					}
				}()
			}
			count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
			waitUntil(t, "writes before the kill", func() bool { return count() > 100 })
			lead := c.Leader(10 * time.Second)
			c.Members[lead].Kill()
			before := count()
			waitUntil(t, "writes after the leader was killed", func() bool { return count() > before+100 })
			close(stop)
			wg.Wait()

			// Every acknowledged write is there, read through a survivor.
			var survivor *framework.Member
			for i, m := range c.Members {
				if i != lead {
					survivor = m
				}
			}
			sc := survivor.Client3()
			defer sc.Close()
			g, err := sc.Get(ctxT(t), "w", clientv3.WithPrefix())
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, kv := range g.Kvs {
				got[string(kv.Key)] = string(kv.Value)
			}
			for k, v := range acked {
				if got[k] != v {
					t.Fatalf("acknowledged %s=%s lost (read %q)", k, v, got[k])
				}
			}

			// Majority down: a write fails within the request timeout with
			// etcd's error; a serializable read still answers.
			for i, m := range c.Members {
				if i != lead && m != survivor {
					m.Kill()
				}
			}
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, err = sc.Put(ctx, "no-quorum", "x")
			cancel()
			if err == nil || time.Since(start) > 15*time.Second {
				t.Fatalf("write without quorum: %v after %v", err, time.Since(start))
			}
			if _, err := sc.Get(ctxT(t), "w", clientv3.WithSerializable(), clientv3.WithCountOnly()); err != nil {
				t.Fatalf("serializable read without quorum: %v", err)
			}

			// The members return; the cluster heals without help.
			for i, m := range c.Members {
				if m != survivor {
					c.Members[i].Start()
				}
			}
			for _, m := range c.Members {
				m.WaitReady(60 * time.Second)
			}
			if _, err := sc.Put(ctxT(t), "healed", "yes"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// waitUntil polls cond until it holds or 30 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// A member started with another --initial-cluster-token (so another cluster
// ID) is refused by its peers, both sides say so with both cluster IDs and
// the likely causes, and the healthy members keep serving.
func TestClusterIDMismatchRefused(t *testing.T) {
	c := framework.NewCluster(t, []string{framework.Cairn(t)}, 3)
	stray := c.Members[2]
	stray.Extra = append(stray.Extra, "--initial-cluster-token", "another-cluster")
	for _, m := range c.Members[:2] {
		m.Start()
	}
	stray.Start()
	for _, m := range c.Members[:2] {
		m.WaitReady(60 * time.Second)
	}
	waitUntil(t, "the healthy members to log the mismatch", func() bool {
		return strings.Contains(c.Members[0].Log()+c.Members[1].Log(), "request cluster ID mismatch")
	})
	if !stray.WaitLog("cluster ID mismatch", 20*time.Second) {
		t.Fatalf("the stray member did not log the mismatch:\n%s", stray.Log())
	}
	for _, want := range []string{"likely-causes", "--initial-cluster-token"} {
		if !strings.Contains(c.Members[0].Log()+c.Members[1].Log(), want) {
			t.Errorf("the mismatch log does not say %q", want)
		}
	}
	cl := c.Members[0].Client3()
	defer cl.Close()
	if _, err := cl.Put(ctxT(t), "still", "serving"); err != nil {
		t.Fatalf("the healthy members stopped serving: %v", err)
	}
	if stray.WaitLog("ready to serve client requests", time.Second) {
		t.Fatal("the stray member joined")
	}
}

// Five members tolerate two failures: with the leader and a follower
// killed, a new leader is elected and writes go on through every survivor.
func TestFiveMembersLoseTwo(t *testing.T) {
	c := framework.NewCluster(t, []string{framework.Cairn(t)}, 5)
	c.Start(60 * time.Second)
	lead := c.Leader(10 * time.Second)
	killed := map[int]bool{lead: true, (lead + 1) % 5: true}
	for i := range killed {
		c.Members[i].Kill()
	}
	for i, m := range c.Members {
		if killed[i] {
			continue
		}
		cl := m.Client3()
		waitUntil(t, "a write through "+m.Name, func() bool {
			_, err := cl.Put(ctxTimeout(t, 2*time.Second), "survivor/"+m.Name, "v")
			return err == nil
		})
		cl.Close()
	}
}

// A leader stopped with SIGTERM hands leadership to a connected voter before
// it exits, as etcd does, so the others have a leader at once instead of
// after an election timeout (set to 5 s here, so the difference is plain).
func TestGracefulStopHandsOverLeadership(t *testing.T) {
	for _, tg := range clusterTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			c := framework.NewCluster(t, []string{tg.bin}, 3,
				"--heartbeat-interval", "100", "--election-timeout", "5000")
			c.Start(60 * time.Second)
			lead := c.Leader(30 * time.Second)
			old := c.Members[lead]
			old.Stop()
			stopped := time.Now()
			next := c.Leader(30 * time.Second)
			if took := time.Since(stopped); took > 2500*time.Millisecond {
				t.Fatalf("a new leader took %v after the old one stopped; an election timeout is 5s, so leadership was not handed over", took)
			}
			if next == lead {
				t.Fatalf("the stopped member %s still leads", old.Name)
			}
			if log := old.Log(); !strings.Contains(log, "leadership transfer finished") {
				t.Errorf("the stopped leader did not log the handover:\n%s", log[max(0, len(log)-3000):])
			}
			// The cluster goes on with two members.
			cl := c.Members[next].Client3()
			defer cl.Close()
			if _, err := cl.Put(ctxT(t), "after", "handover"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
