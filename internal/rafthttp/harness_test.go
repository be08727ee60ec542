package rafthttp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// testTiming keeps the default intervals except a faster heartbeat, so
// tests also see heartbeats interleaved with traffic.
var testTiming = timing{heartbeat: 200 * time.Millisecond, redial: 20 * time.Millisecond, streamIdle: connReadTimeout}

type snapReport struct {
	id     uint64
	status raft.SnapshotStatus
}

// fakeRaft records what the transport hands to raft. Safe for concurrent
// use.
type fakeRaft struct {
	mu          sync.Mutex
	msgs        []raftpb.Message
	removed     map[uint64]bool
	unreachable []uint64
	snaps       []snapReport
	processErr  error
	block       chan struct{} // when set, Process waits for it (or ctx)
}

func newFakeRaft() *fakeRaft { return &fakeRaft{removed: map[uint64]bool{}} }

func (f *fakeRaft) Process(ctx context.Context, m raftpb.Message) error {
	f.mu.Lock()
	block, err := f.block, f.processErr
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.msgs = append(f.msgs, m)
	f.mu.Unlock()
	return nil
}

func (f *fakeRaft) IsIDRemoved(id uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.removed[id]
}

func (f *fakeRaft) ReportUnreachable(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unreachable = append(f.unreachable, id)
}

func (f *fakeRaft) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snaps = append(f.snaps, snapReport{id, status})
}

func (f *fakeRaft) setRemoved(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed[id] = true
}

func (f *fakeRaft) received() []raftpb.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]raftpb.Message(nil), f.msgs...)
}

func (f *fakeRaft) unreachables() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint64(nil), f.unreachable...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

// node is one Transport served by an httptest server on a timeout
// listener, with its raft and logs observable.
type node struct {
	id    uint64
	tr    *Transport
	srv   *httptest.Server
	raft  *fakeRaft
	logs  *observer.ObservedLogs
	posts atomic.Int64 // POST /raft requests served
	dials atomic.Int64 // stream GETs served

	closeOnce sync.Once
}

// nodeSetup is what nodeOptions may change before the node starts.
type nodeSetup struct {
	cfg         Config
	timing      timing
	connTimeout time.Duration // per-read/write timeout of the server's connections
}

type nodeOption func(*nodeSetup)

func withConfig(f func(*Config)) nodeOption { return func(s *nodeSetup) { f(&s.cfg) } }

// withShortTimeouts shrinks the 5 s connection timeouts to d on both sides
// and sets the link heartbeat interval.
func withShortTimeouts(d, heartbeat time.Duration) nodeOption {
	return func(s *nodeSetup) {
		s.connTimeout = d
		s.timing.streamIdle = d
		s.timing.heartbeat = heartbeat
	}
}

func newNode(t *testing.T, id, cluster uint64, opts ...nodeOption) *node {
	t.Helper()
	n := &node{id: id, raft: newFakeRaft()}
	core, logs := observer.New(zapcore.DebugLevel)
	n.logs = logs
	var handler atomic.Pointer[http.Handler]
	n.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/raft":
			n.posts.Add(1)
		case strings.HasPrefix(r.URL.Path, "/raft/stream/"):
			n.dials.Add(1)
		}
		(*handler.Load()).ServeHTTP(w, r)
	}))
	setup := nodeSetup{
		cfg: Config{
			Logger:    zap.New(core),
			LocalID:   id,
			ClusterID: cluster,
			LocalURLs: []string{n.srv.URL},
			Raft:      n.raft,
		},
		timing:      testTiming,
		connTimeout: connReadTimeout,
	}
	for _, o := range opts {
		o(&setup)
	}
	n.srv.Listener = &timeoutListener{Listener: n.srv.Listener, rd: setup.connTimeout, wr: setup.connTimeout}
	n.srv.Start()
	setup.cfg.LocalURLs = []string{n.srv.URL}
	tr, err := newTransport(setup.cfg, setup.timing)
	if err != nil {
		t.Fatal(err)
	}
	n.tr = tr
	h := tr.Handler()
	handler.Store(&h)
	t.Cleanup(n.close)
	return n
}

// close stops the transport, then the server (whose stream handlers end
// once the transport released them).
func (n *node) close() {
	n.closeOnce.Do(func() {
		n.tr.Stop()
		n.srv.Close()
	})
}

func (n *node) url() string { return n.srv.URL }

// connect makes every node a peer of every other.
func connect(nodes ...*node) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.tr.AddPeer(b.id, []string{b.url()})
			}
		}
	}
}

// streamsUp reports whether a's writers to b are both attached, i.e. b
// dialled a's two streams.
func streamsUp(a *node, b uint64) bool {
	p := a.tr.peer(b)
	if p == nil {
		return false
	}
	_, ok1 := p.msgWriter.writec()
	_, ok2 := p.appWriter.writec()
	return ok1 && ok2
}

// goroutineBaseline returns a check that waits until the goroutine count
// is back to what it is now.
func goroutineBaseline(t *testing.T) func() {
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// logged reports whether a log line with message msg was written.
func logged(logs *observer.ObservedLogs, msg string) bool {
	return logs.FilterMessage(msg).Len() > 0
}
