package watch

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/mvcc"
)

// env is a store on a temporary backend with a hub on it; the test is the
// writer.
type env struct {
	t   testing.TB
	b   *backend.Backend
	st  *mvcc.Store
	hub *Hub
	// log is every event written, in order.
	log []mvccpb.Event
}

func newEnv(t testing.TB, mut func(*Config)) *env {
	t.Helper()
	e := &env{t: t}
	bc := backend.DefaultConfig(filepath.Join(t.TempDir(), "db"))
	bc.MmapSize = 0
	b, err := backend.Open(bc)
	if err != nil {
		t.Fatal(err)
	}
	mc := mvcc.DefaultConfig()
	mc.CompactionSleepInterval = 0
	mc.OnEvents = func(rev int64, evs []mvccpb.Event) {
		for _, ev := range evs {
			c := ev
			kv := *ev.Kv
			c.Kv = &kv
			e.log = append(e.log, c)
		}
		e.hub.OnEvents(rev, evs)
	}
	st, err := mvcc.New(b, mc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	if mut != nil {
		mut(&cfg)
	}
	h, err := NewHub(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.b, e.st, e.hub = b, st, h
	t.Cleanup(func() {
		h.Close()
		st.Close()
		b.Close()
	})
	return e
}

// op is one change of a write transaction.
type op struct {
	key, val string
	del      bool
	end      string // delete range end ("" single key)
}

func put(k, v string) op        { return op{key: k, val: v} }
func del(k string) op           { return op{key: k, del: true} }
func delRange(k, end string) op { return op{key: k, end: end, del: true} }

// write applies ops in one transaction and returns the store revision.
func (e *env) write(ops ...op) int64 {
	e.t.Helper()
	w := e.st.Write()
	for _, o := range ops {
		var err error
		if o.del {
			var end []byte
			if o.end != "" {
				end = []byte(o.end)
			}
			_, _, err = w.DeleteRange([]byte(o.key), end)
		} else {
			_, err = w.Put([]byte(o.key), []byte(o.val), 0)
		}
		if err != nil {
			e.t.Fatal(err)
		}
	}
	if err := w.End(); err != nil {
		e.t.Fatal(err)
	}
	return e.st.Rev()
}

func (e *env) compact(rev int64) {
	e.t.Helper()
	ch, err := e.st.Compact(rev)
	if err != nil {
		e.t.Fatal(err)
	}
	<-ch
}

// client is one stream with a recording sender. A blocked client's sends
// wait until it is unblocked (a client that does not read).
type client struct {
	s *Stream

	mu      sync.Mutex
	cond    *sync.Cond
	resps   []*pb.WatchResponse
	blocked bool
	fail    error
	done    chan error
}

func (e *env) newClient() *client {
	c := &client{done: make(chan error, 1)}
	c.cond = sync.NewCond(&c.mu)
	c.s = e.hub.NewStream(c.send, func(rev int64) *pb.ResponseHeader { return &pb.ResponseHeader{Revision: rev} })
	go func() { c.done <- c.s.Run() }()
	e.t.Cleanup(func() { c.close() })
	return c
}

func (c *client) send(m Message) error {
	// Encoded responses are decoded (their bytes checked) as a client would.
	r, err := Response(m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.blocked && c.fail == nil {
		c.cond.Wait()
	}
	if c.fail != nil {
		return c.fail
	}
	// Events may be shared with other watchers: keep copies.
	cp := *r
	cp.Events = make([]*mvccpb.Event, len(r.Events))
	for i, ev := range r.Events {
		x := *ev
		cp.Events[i] = &x
	}
	c.resps = append(c.resps, &cp)
	c.cond.Broadcast()
	return nil
}

func (c *client) block(b bool) {
	c.mu.Lock()
	c.blocked = b
	c.cond.Broadcast()
	c.mu.Unlock()
}

func (c *client) close() {
	c.mu.Lock()
	c.fail = errStreamIsClosed
	c.cond.Broadcast()
	c.mu.Unlock()
	c.s.Close()
	<-c.done
	c.done <- nil
	c.mu.Lock()
	c.resps = nil // memory tests: a closed client keeps nothing
	c.mu.Unlock()
}

// responses returns a copy of what was received so far.
func (c *client) responses() []*pb.WatchResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*pb.WatchResponse(nil), c.resps...)
}

// waitFor waits until cond holds on the responses.
func (c *client) waitFor(t testing.TB, what string, cond func([]*pb.WatchResponse) bool) []*pb.WatchResponse {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	c.mu.Lock()
	defer c.mu.Unlock()
	for !cond(c.resps) {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting for %s; got %d responses, the last:\n%s", what, len(c.resps), brief(c.resps[max(0, len(c.resps)-10):]))
			t.FailNow()
		}
		c.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		c.mu.Lock()
	}
	return append([]*pb.WatchResponse(nil), c.resps...)
}

// waitN waits for n responses.
func (c *client) waitN(t testing.TB, n int) []*pb.WatchResponse {
	t.Helper()
	return c.waitFor(t, fmt.Sprintf("%d responses", n), func(r []*pb.WatchResponse) bool { return len(r) >= n })
}

func dumpResps(rs []*pb.WatchResponse) string {
	s := ""
	for i, r := range rs {
		if i > 40 {
			return s + "...\n"
		}
		s += r.String() + "\n"
	}
	return s
}

// eventsOf returns the events received for watch id, in order, and the
// responses that carried them.
func eventsOf(rs []*pb.WatchResponse, id int64) (evs []*mvccpb.Event, carriers []*pb.WatchResponse) {
	for _, r := range rs {
		if r.WatchId == id && len(r.Events) > 0 {
			evs = append(evs, r.Events...)
			carriers = append(carriers, r)
		}
	}
	return evs, carriers
}
