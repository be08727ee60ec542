package e2e

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
)

type ack struct {
	key string
	rev int64
}

// writeUntilKilled runs writers against m until stop closes, recording
// every acknowledged put.
func writeUntilKilled(t *testing.T, m *framework.Member, round, writers int, stop <-chan struct{}) []ack {
	var (
		mu   sync.Mutex
		acks []ack
		wg   sync.WaitGroup
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := m.Client3()
			defer c.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("r%d/w%d/%06d", round, w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				resp, err := c.Put(ctx, key, key)
				cancel()
				if err != nil {
					// The server was killed: everything from here on is unknown.
					return
				}
				mu.Lock()
				acks = append(acks, ack{key, resp.Header.Revision})
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	return acks
}

func checkAcked(t *testing.T, m *framework.Member, acks []ack) {
	t.Helper()
	c := m.Client3()
	defer c.Close()
	for _, a := range acks {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		g, err := c.Get(ctx, a.key)
		cancel()
		if err != nil {
			t.Fatalf("get %s: %v", a.key, err)
		}
		if len(g.Kvs) != 1 || string(g.Kvs[0].Value) != a.key || g.Kvs[0].ModRevision != a.rev {
			t.Fatalf("acknowledged write %s at revision %d lost or changed after restart: %+v", a.key, a.rev, g.Kvs)
		}
	}
}

// Every acknowledged write survives SIGKILL at a random moment, with its
// revision, across several kill/restart rounds (some of them past a
// snapshot, so WAL release and snapshot loading are exercised too).
func TestNoAcknowledgedWriteLostOnKill(t *testing.T) {
	m := framework.NewMember(t, framework.Cairn(t), "n1", "--snapshot-count", "500")
	m.StartAndWait(20 * time.Second)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	var all []ack
	for round := 0; round < 3; round++ {
		stop := make(chan struct{})
		var acks []ack
		done := make(chan struct{})
		go func() { acks = writeUntilKilled(t, m, round, 8, stop); close(done) }()
		// Kill once a random number of writes were acknowledged.
		delay := time.Duration(300+rng.Intn(900)) * time.Millisecond
		timer := time.NewTimer(delay)
		<-timer.C
		m.Kill()
		close(stop)
		<-done
		if len(acks) == 0 {
			t.Fatalf("round %d: no write was acknowledged\n%s", round, m.Log())
		}
		t.Logf("round %d: %d writes acknowledged before SIGKILL after %v", round, len(acks), delay)
		all = append(all, acks...)
		m.StartAndWait(30 * time.Second)
		checkAcked(t, m, all)
	}
	snaps, _ := filepath.Glob(filepath.Join(m.DataDir, "member", "snap", "*.snap"))
	if len(snaps) == 0 {
		t.Fatalf("expected raft snapshots after %d writes with --snapshot-count 500", len(all))
	}
}

// A clean restart keeps data, revision and identity.
func TestRestartKeepsState(t *testing.T) {
	m := framework.NewMember(t, framework.Cairn(t), "n1", "--snapshot-count", "100")
	m.StartAndWait(20 * time.Second)
	c := m.Client3()
	ctx := ctxT(t)
	var last *clientv3.PutResponse
	for i := 0; i < 350; i++ {
		r, err := c.Put(ctx, fmt.Sprintf("k%04d", i), fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		last = r
	}
	st1, err := c.Status(ctx, m.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	m.Stop()
	if ee := m.ExitErr(); ee != nil && ee.Error() != "signal: terminated" {
		t.Fatalf("clean stop: %v\n%s", ee, m.Log())
	}
	m.StartAndWait(20 * time.Second)
	c = m.Client3()
	defer c.Close()
	g, err := c.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || g.Count != 350 || g.Header.Revision != last.Header.Revision {
		t.Fatalf("after restart: count %d rev %d (want 350, %d): %v", g.Count, g.Header.Revision, last.Header.Revision, err)
	}
	st2, err := c.Status(ctx, m.Endpoint())
	if err != nil || st2.Header.MemberId != st1.Header.MemberId || st2.Header.ClusterId != st1.Header.ClusterId {
		t.Fatalf("identity changed: %+v vs %+v (%v)", st2.Header, st1.Header, err)
	}
	if _, err := os.Stat(filepath.Join(m.DataDir, "member", "snap", "db")); err != nil {
		t.Fatal(err)
	}
}
