package rafthttp

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

const cluster = 0xabc

// Before the peer dials our streams, messages go through the pipeline; the
// receiver registers the unknown sender as a remote and can answer through
// its own pipeline.
func TestPipelineBeforeStreams(t *testing.T) {
	a, b := newNode(t, 1, cluster), newNode(t, 2, cluster)
	a.tr.AddPeer(2, []string{b.url()}) // b does not know a: no streams to a

	a.tr.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 1}})
	waitFor(t, 5*time.Second, "b to receive the heartbeat", func() bool { return len(b.raft.received()) == 1 })
	if b.posts.Load() != 1 {
		t.Errorf("b served %d pipeline POSTs, want 1", b.posts.Load())
	}
	// The pipeline's 204 made b active (a's stream dials, which b answers
	// 404 until it knows a, make it flap: spec 6.2).
	waitFor(t, 5*time.Second, "a to see b active", func() bool { return logged(a.logs, "peer became active") })

	b.tr.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeatResp, From: 2, To: 1, Term: 1}})
	waitFor(t, 5*time.Second, "a to receive the answer through b's remote", func() bool { return len(a.raft.received()) == 1 })
	if got := a.raft.received()[0]; got.Type != raftpb.MsgHeartbeatResp || got.From != 2 {
		t.Errorf("a received %+v", got)
	}
	// Adding b's real peer replaces the remote.
	b.tr.AddPeer(1, []string{a.url()})
	b.tr.mu.RLock()
	remotes := len(b.tr.remotes)
	b.tr.mu.RUnlock()
	if remotes != 0 {
		t.Errorf("%d remotes left after AddPeer", remotes)
	}
}

// Once both streams are up, every message takes a stream (none the
// pipeline), MsgApps in AppEntries form, and each stream keeps its order.
func TestStreamsCarryMessagesInOrder(t *testing.T) {
	nodes := []*node{newNode(t, 1, cluster), newNode(t, 2, cluster), newNode(t, 3, cluster)}
	connect(nodes...)
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				waitFor(t, 5*time.Second, fmt.Sprintf("streams %d→%d", a.id, b.id), func() bool { return streamsUp(a, b.id) })
				waitFor(t, 5*time.Second, "active", func() bool { return !a.tr.ActiveSince(b.id).IsZero() })
			}
		}
	}
	posts := nodes[1].posts.Load() + nodes[2].posts.Load()

	const n = 1500
	var sent2, sent3 []raftpb.Message
	for i := uint64(1); i <= n; i++ {
		app := raftpb.Message{Type: raftpb.MsgApp, From: 1, Term: 5, LogTerm: 5, Index: i, Commit: i,
			Entries: []raftpb.Entry{{Term: 5, Index: i + 1, Data: []byte(fmt.Sprint(i))}}}
		hb := raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, Term: 5, Commit: i}
		for _, to := range []uint64{2, 3} {
			app.To, hb.To = to, to
			batch := []raftpb.Message{app, hb}
			nodes[0].tr.Send(batch)
			if to == 2 {
				sent2 = append(sent2, batch...)
			} else {
				sent3 = append(sent3, batch...)
			}
		}
	}
	for i, want := range [][]raftpb.Message{sent2, sent3} {
		r := nodes[i+1].raft
		waitFor(t, 10*time.Second, "all messages", func() bool { return len(r.received()) == len(want) })
		got := r.received()
		for _, typ := range []raftpb.MessageType{raftpb.MsgApp, raftpb.MsgHeartbeat} {
			g, w := ofType(got, typ), ofType(want, typ)
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("node %d %s: got %d messages, want %d; first difference at %d", i+2, typ, len(g), len(w), firstDiff(g, w))
			}
		}
	}
	if got := nodes[1].posts.Load() + nodes[2].posts.Load(); got != posts {
		t.Errorf("%d pipeline POSTs while streams were up", got-posts)
	}
}

func ofType(ms []raftpb.Message, typ raftpb.MessageType) []raftpb.Message {
	var out []raftpb.Message
	for _, m := range ms {
		if m.Type == typ {
			out = append(out, normalize(m))
		}
	}
	return out
}

func firstDiff(a, b []raftpb.Message) int {
	for i := range min(len(a), len(b)) {
		if !reflect.DeepEqual(a[i], b[i]) {
			return i
		}
	}
	return min(len(a), len(b))
}

// Stop (and RemovePeer) end every goroutine the transport started.
func TestStopLeavesNoGoroutines(t *testing.T) {
	check := goroutineBaseline(t)
	nodes := []*node{newNode(t, 1, cluster), newNode(t, 2, cluster), newNode(t, 3, cluster)}
	connect(nodes...)
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				waitFor(t, 5*time.Second, "streams", func() bool { return streamsUp(a, b.id) })
			}
		}
	}
	nodes[0].tr.Send([]raftpb.Message{{Type: raftpb.MsgApp, From: 1, To: 2, Term: 1}, {Type: raftpb.MsgHeartbeat, From: 1, To: 3, Term: 1}})
	nodes[0].tr.RemovePeer(2)
	nodes[0].tr.RemovePeer(2) // again: only logged
	if !logged(nodes[0].logs, "skipped removing already removed peer") {
		t.Error("second RemovePeer not logged")
	}
	for _, n := range nodes {
		n.tr.Stop()
	}
	for _, n := range nodes {
		n.close()
	}
	check()
}

// A peer that has removed us answers our stream dials with 410: we report
// it once through OnRemoved and stop dialling.
func TestRemovedMemberLearnsFromStream(t *testing.T) {
	var removed atomic.Int32
	var gotErr atomic.Value
	a := newNode(t, 1, cluster)
	b := newNode(t, 2, cluster, withConfig(func(c *Config) {
		c.OnRemoved = func(err error) { removed.Add(1); gotErr.Store(err) }
	}))
	connect(a, b)
	waitFor(t, 5*time.Second, "streams", func() bool { return streamsUp(a, 2) && streamsUp(b, 1) })

	a.raft.setRemoved(2)
	a.tr.RemovePeer(2)
	waitFor(t, 5*time.Second, "OnRemoved", func() bool { return removed.Load() > 0 })
	if err, _ := gotErr.Load().(error); !errors.Is(err, ErrMemberRemoved) {
		t.Errorf("OnRemoved got %v", err)
	}
	if !logged(a.logs, "rejected stream from remote peer because it was removed") {
		t.Error("a did not log the refusal")
	}
	if !a.tr.ActiveSince(2).IsZero() {
		t.Error("removed peer still has an active-since time")
	}
	// Both of b's readers of a stop dialling for good.
	p := b.tr.peer(1)
	for _, r := range []*streamReader{p.msgReader, p.appReader} {
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s reader still dialling after the 410", r.typ)
		}
	}
	if removed.Load() != 1 {
		t.Errorf("OnRemoved called %d times", removed.Load())
	}
}

// A pipeline answer 403 means we were removed.
func TestPipeline403MeansRemoved(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/raft" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(403)
			fmt.Fprint(w, `{"message":"cannot process message from removed member"}`)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	removed := make(chan error, 1)
	a := newNode(t, 1, cluster, withConfig(func(c *Config) { c.OnRemoved = func(err error) { removed <- err } }))
	a.tr.AddPeer(2, []string{srv.URL})
	a.tr.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2}})
	select {
	case err := <-removed:
		if !errors.Is(err, ErrMemberRemoved) {
			t.Fatalf("OnRemoved(%v)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnRemoved not called")
	}
	waitFor(t, 5*time.Second, "unreachable report", func() bool { return slices.Contains(a.raft.unreachables(), 2) })
	a.close()
}

// Members of different clusters refuse each other, and both sides log why.
func TestClusterIDMismatchRefused(t *testing.T) {
	a, c := newNode(t, 1, cluster), newNode(t, 3, cluster+1)
	connect(a, c)
	waitFor(t, 5*time.Second, "a's dial refusal", func() bool {
		return logged(a.logs, "request sent was ignored by remote peer due to cluster ID mismatch")
	})
	waitFor(t, 5*time.Second, "c's log", func() bool { return logged(c.logs, "request cluster ID mismatch") })
	a.tr.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 3}})
	waitFor(t, 5*time.Second, "a's pipeline refusal", func() bool {
		return logged(a.logs, "request sent was ignored due to cluster ID mismatch")
	})
	waitFor(t, 5*time.Second, "unreachable report", func() bool { return slices.Contains(a.raft.unreachables(), 3) })
	if len(c.raft.received()) != 0 {
		t.Errorf("c processed %d messages from another cluster", len(c.raft.received()))
	}
	if !a.tr.ActiveSince(3).IsZero() || !c.tr.ActiveSince(1).IsZero() {
		t.Error("a peer of another cluster became active")
	}
}

// A member whose minimum cluster version is above ours is refused.
func TestIncompatibleVersionRefused(t *testing.T) {
	a := newNode(t, 1, cluster)
	x := newNode(t, 2, cluster, withConfig(func(c *Config) { c.ServerVersion, c.MinClusterVersion = "3.7.0", "3.7.0" }))
	connect(a, x)
	waitFor(t, 5*time.Second, "x's dial refusal", func() bool {
		return logged(x.logs, "request sent was ignored by remote peer due to server version incompatibility")
	})
	waitFor(t, 5*time.Second, "a's log", func() bool { return logged(a.logs, "failed version compatibility check") })
	x.tr.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 2, To: 1}})
	waitFor(t, 5*time.Second, "x's pipeline refusal", func() bool { return logged(x.logs, "request sent was ignored by peer") })
	if len(a.raft.received()) != 0 {
		t.Errorf("a processed %d messages", len(a.raft.received()))
	}
}

// blockingRaft blocks in every report until released, like raftnode's
// loop calling Send.
type blockingRaft struct {
	*fakeRaft
	release chan struct{}
}

func (b blockingRaft) ReportUnreachable(id uint64) {
	<-b.release
	b.fakeRaft.ReportUnreachable(id)
}

func (b blockingRaft) ReportSnapshot(id uint64, s raft.SnapshotStatus) {
	<-b.release
	b.fakeRaft.ReportSnapshot(id, s)
}

// Send refuses a MsgSnap at once, reporting a failed snapshot and an
// unreachable peer, and never waits for raft to take the reports.
func TestSendRefusesSnapshot(t *testing.T) {
	fr := newFakeRaft()
	br := blockingRaft{fakeRaft: fr, release: make(chan struct{})}
	a := newNode(t, 1, cluster, withConfig(func(c *Config) { c.Raft = br }))
	a.tr.AddPeer(2, []string{"http://127.0.0.1:1"})
	done := make(chan struct{})
	go func() {
		a.tr.Send([]raftpb.Message{{Type: raftpb.MsgSnap, From: 1, To: 2, Snapshot: &raftpb.Snapshot{}}})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Send blocked on raft's reports")
	}
	close(br.release)
	waitFor(t, 5*time.Second, "reports", func() bool {
		fr.mu.Lock()
		defer fr.mu.Unlock()
		return len(fr.snaps) == 1 && slices.Contains(fr.unreachable, 2)
	})
	if fr.snaps[0] != (snapReport{2, raft.SnapshotFailure}) {
		t.Errorf("snapshot report %+v", fr.snaps[0])
	}
	if !logged(a.logs, "refused a snapshot message given to Send: snapshots travel with their database through SendSnapshot") {
		t.Error("no log line for the refused snapshot")
	}
}

// With the pipeline stuck, Send drops what does not fit (4 in flight + 64
// queued) and reports the peer unreachable, without blocking.
func TestSendDropsWhenQueueFull(t *testing.T) {
	a, b := newNode(t, 1, cluster), newNode(t, 2, cluster)
	b.raft.block = make(chan struct{})
	a.tr.AddPeer(2, []string{b.url()})
	var msgs []raftpb.Message
	for i := range 200 {
		msgs = append(msgs, raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Commit: uint64(i)})
	}
	start := time.Now()
	for i := range msgs {
		a.tr.Send(msgs[i : i+1])
		if i == 0 {
			// Let the first ones reach b, so the in-flight count is known.
			waitFor(t, 5*time.Second, "a request in flight", func() bool { return b.posts.Load() > 0 })
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send took %v", d)
	}
	waitFor(t, 5*time.Second, "unreachable report", func() bool { return slices.Contains(a.raft.unreachables(), 2) })
	if !logged(a.logs, "dropped internal Raft message since sending buffer is full") {
		t.Error("no drop log line")
	}
	close(b.raft.block)
	waitFor(t, 5*time.Second, "the queued messages", func() bool {
		n := len(b.raft.received())
		return n >= pipelineQueue && n <= pipelineQueue+pipelineWorkers
	})
}

// UpdatePeer moves the streams to a working URL.
func TestUpdatePeer(t *testing.T) {
	a, b := newNode(t, 1, cluster), newNode(t, 2, cluster)
	a.tr.AddPeer(2, []string{"http://127.0.0.1:1"})
	b.tr.AddPeer(1, []string{a.url()})
	waitFor(t, 5*time.Second, "a's dial failure", func() bool { return logged(a.logs, "peer deactivated again") })
	a.tr.UpdatePeer(2, []string{b.url()})
	waitFor(t, 5*time.Second, "streams both ways", func() bool { return streamsUp(a, 2) && streamsUp(b, 1) })
}

// An idle stream stays up past the read timeout thanks to link
// heartbeats; without them, the reader's read timeout breaks it.
func TestLinkHeartbeatKeepsStreamsUp(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, tt := range []struct {
		name      string
		heartbeat time.Duration
		wantUp    bool
	}{
		{"with heartbeats", timeout / 3, true},
		{"without heartbeats", time.Hour, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := newNode(t, 1, cluster, withShortTimeouts(timeout, tt.heartbeat))
			b := newNode(t, 2, cluster, withShortTimeouts(timeout, tt.heartbeat))
			connect(a, b)
			waitFor(t, 5*time.Second, "streams", func() bool { return streamsUp(a, 2) && streamsUp(b, 1) })
			since, dials := b.tr.ActiveSince(1), a.dials.Load()
			idle := time.NewTimer(5 * timeout) // the idle period under test
			<-idle.C
			if tt.wantUp {
				if got := b.tr.ActiveSince(1); !got.Equal(since) || a.dials.Load() != dials {
					t.Fatalf("stream broke while idle: since %v → %v, %d redials", since, got, a.dials.Load()-dials)
				}
				return
			}
			if !logged(b.logs, "lost TCP streaming connection with remote peer") || a.dials.Load() == dials {
				t.Fatalf("stream without heartbeats survived the read timeout (%d redials)", a.dials.Load()-dials)
			}
		})
	}
}

// Each peer's reports reach raft on one goroutine, merged per peer.
func TestReporterMergesUnreachable(t *testing.T) {
	fr := newFakeRaft()
	release := make(chan struct{})
	rp := newReporter(blockingRaft{fakeRaft: fr, release: release})
	defer rp.close()
	for range 100 {
		rp.unreachable(7)
	}
	close(release)
	waitFor(t, 5*time.Second, "report", func() bool { return len(fr.unreachables()) >= 1 })
	if n := len(fr.unreachables()); n > 2 {
		t.Errorf("%d unreachable reports for one peer, want them merged", n)
	}
}
