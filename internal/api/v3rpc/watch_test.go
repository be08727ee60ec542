package v3rpc

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/mvcc"
	"github.com/cairnkv/cairn/internal/watch"
)

// watchMember is a fake member with a real store and hub behind Watch.
type watchMember struct {
	*fakeMember
	st  *mvcc.Store
	hub *watch.Hub
}

func (w *watchMember) WatchHub() *watch.Hub { return w.hub }

func newWatchMember(t *testing.T) *watchMember {
	t.Helper()
	bc := backend.DefaultConfig(filepath.Join(t.TempDir(), "db"))
	bc.MmapSize = 0
	b, err := backend.Open(bc)
	if err != nil {
		t.Fatal(err)
	}
	wm := &watchMember{fakeMember: &fakeMember{kvs: map[string]string{}}}
	mc := mvcc.DefaultConfig()
	mc.OnEvents = func(rev int64, evs []mvccpb.Event) { wm.hub.OnEvents(rev, evs) }
	if wm.st, err = mvcc.New(b, mc); err != nil {
		t.Fatal(err)
	}
	if wm.hub, err = watch.NewHub(wm.st, watch.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wm.hub.Close(); wm.st.Close(); b.Close() })
	return wm
}

func (w *watchMember) put(t *testing.T, k, v string) {
	t.Helper()
	tx := w.st.Write()
	if _, err := tx.Put([]byte(k), []byte(v), 0); err != nil {
		t.Fatal(err)
	}
	if err := tx.End(); err != nil {
		t.Fatal(err)
	}
}

// clientv3's Watch works end to end: events with etcd's headers, and a
// stream that requires a leader is ended with "no leader" after the member
// has had none for three election timeouts (etcd's grace), while a stream
// that does not require one stays.
func TestWatchThroughClient(t *testing.T) {
	m := newWatchMember(t)
	cfg, _ := serve(t, m, Options{ElectionTimeout: 30 * time.Millisecond})
	c := newClient(t, cfg)
	plain := c.Watch(testCtx(t), "k", clientv3.WithPrefix())
	leader := c.Watch(clientv3.WithRequireLeader(testCtx(t)), "k", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	<-leader
	time.Sleep(50 * time.Millisecond) // plain's creation
	m.put(t, "k1", "v1")
	for _, ch := range []clientv3.WatchChan{plain, leader} {
		r := <-ch
		if len(r.Events) != 1 || string(r.Events[0].Kv.Value) != "v1" || r.Header.MemberId != fakeID ||
			r.Header.ClusterId != fakeCluster || r.Header.RaftTerm != fakeTerm || r.Header.Revision != 2 {
			t.Fatalf("watch response %+v", r)
		}
	}
	m.noLeader.Store(true)
	start := time.Now()
	r, ok := <-leader
	if !ok || !errors.Is(r.Err(), rpctypes.ErrNoLeader) {
		t.Fatalf("require-leader watch without a leader: %v %v", r, ok)
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Fatalf("ended after %v, before three election timeouts", d)
	}
	m.noLeader.Store(false)
	m.put(t, "k2", "v2")
	if r := <-plain; len(r.Events) != 1 || string(r.Events[0].Kv.Key) != "k2" {
		t.Fatalf("plain watch after the leader loss: %+v", r)
	}
	// A new require-leader watch is refused at once while there is none.
	m.noLeader.Store(true)
	r, ok = <-c.Watch(clientv3.WithRequireLeader(testCtx(t)), "k")
	if !ok || !errors.Is(r.Err(), rpctypes.ErrNoLeader) {
		t.Fatalf("new require-leader watch without a leader: %v %v", r, ok)
	}
}
