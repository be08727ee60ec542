package raftnode

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// TestLeaderSharesReadRounds: a leader with peers serves its own read-index
// requests and its followers' MsgReadIndex that wait together with one
// round of heartbeats, and answers each with the same index: its own
// through OnReadStates, the followers' as MsgReadIndexResp.
func TestLeaderSharesReadRounds(t *testing.T) {
	const a, b, c = 1, 2, 3
	nw, vs := newClusterMode(t, 3, true)
	all := []uint64{a, b, c}
	if err := vs[a].n.Campaign(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a to lead", leaderIs(vs, a, all...))
	eventually(t, "a's first entry applied everywhere", appliedAtLeast(vs, 2, all...))

	var mu sync.Mutex
	ctxs := map[string]bool{} // contexts of a's heartbeats to b
	nw.mu.Lock()
	nw.observe = func(from uint64, m raftpb.Message) {
		if from == a && m.To == b && m.Type == raftpb.MsgHeartbeat && len(m.Context) > 0 {
			mu.Lock()
			ctxs[string(m.Context)] = true
			mu.Unlock()
		}
	}
	nw.mu.Unlock()

	// Two of a's own requests and one MsgReadIndex from each follower, all
	// on the loop goroutine before its next round of Readys.
	if err := vs[a].n.do(func() {
		vs[a].n.readIndex([]byte("a-1"))
		vs[a].n.readIndex([]byte("a-2"))
		for _, f := range []uint64{b, c} {
			vs[a].n.step(raftpb.Message{Type: raftpb.MsgReadIndex, From: f, To: a,
				Entries: []raftpb.Entry{{Data: fmt.Appendf(nil, "f-%d", f)}}})
		}
	}); err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, want := range []struct {
		id  uint64
		ctx string
	}{{a, "a-1"}, {a, "a-2"}, {b, "f-2"}, {c, "f-3"}} {
		select {
		case rs := <-vs[want.id].reads:
			if string(rs.RequestCtx) != want.ctx && !(want.id == a && got[string(rs.RequestCtx)] == 0) {
				t.Fatalf("member %d read state %q, want %q", want.id, rs.RequestCtx, want.ctx)
			}
			got[string(rs.RequestCtx)] = rs.Index
		case <-time.After(wait):
			t.Fatalf("member %d: no read state for %q", want.id, want.ctx)
		}
	}
	idx := got["a-1"]
	for ctx, i := range got {
		if i != idx || i < 2 {
			t.Fatalf("read indexes %v: want one index >= 2 for every request (%s)", got, ctx)
		}
	}
	mu.Lock()
	n := len(ctxs)
	mu.Unlock()
	if n != 1 {
		t.Fatalf("the leader confirmed its leadership with %d heartbeat rounds for 4 requests, want 1", n)
	}
}

// TestStaleReadRoundDoesNotHoldReads: a shared round that raft will never
// answer (it was asked in an earlier term, which raft's read-only state
// does not outlive, or it is overdue) does not hold back the requests after
// it: they get a round of their own.
func TestStaleReadRoundDoesNotHoldReads(t *testing.T) {
	const a, b, c = 1, 2, 3
	for _, tc := range []struct {
		name  string
		stale func(n *Node)
	}{
		{"earlier term", func(n *Node) { n.rr.term = n.rn.BasicStatus().Term - 1 }},
		{"overdue", func(n *Node) { n.rr.term, n.rr.ticks = n.rn.BasicStatus().Term, maxReadRoundTicks+1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(d time.Duration) { clusterTick = d }(clusterTick)
			clusterTick = time.Hour // no tick ages the round
			_, vs := newClusterMode(t, 3, true)
			all := []uint64{a, b, c}
			if err := vs[a].n.Campaign(); err != nil {
				t.Fatal(err)
			}
			eventually(t, "a to lead", leaderIs(vs, a, all...))
			eventually(t, "a's first entry applied everywhere", appliedAtLeast(vs, 2, all...))
			if err := vs[a].n.do(func() {
				vs[a].n.rr.ctx = []byte("never answered")
				tc.stale(vs[a].n)
				vs[a].n.readIndex([]byte("after"))
			}); err != nil {
				t.Fatal(err)
			}
			select {
			case rs := <-vs[a].reads:
				if string(rs.RequestCtx) != "after" {
					t.Fatalf("read state %q, want after", rs.RequestCtx)
				}
			case <-time.After(wait):
				t.Fatal("a request was held behind a round raft never answers")
			}
		})
	}
}
