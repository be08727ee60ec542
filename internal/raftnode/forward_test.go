package raftnode

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// appRecorder records the entry indexes of every MsgApp with entries that
// one member sends to another.
type appRecorder struct {
	mu   sync.Mutex
	apps [][]uint64
}

func (r *appRecorder) watch(nw *testNet, from, to uint64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.observe = func(f uint64, m raftpb.Message) {
		if f != from || m.To != to || m.Type != raftpb.MsgApp || len(m.Entries) == 0 {
			return
		}
		var idx []uint64
		for _, e := range m.Entries {
			idx = append(idx, e.Index)
		}
		r.mu.Lock()
		r.apps = append(r.apps, idx)
		r.mu.Unlock()
	}
}

func (r *appRecorder) get() [][]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.apps)
}

// TestForwardedProposalsSteppedAsOne: the MsgProps that peers forwarded and
// that wait in the leader's intake together reach raft as one MsgProp, so
// the leader sends each follower one MsgApp for all of them, not one per
// forwarded message.
func TestForwardedProposalsSteppedAsOne(t *testing.T) {
	bothModes(t, func(t *testing.T, async bool) {
		const a, b, c = 1, 2, 3
		nw, vs := newClusterMode(t, 3, async)
		all := []uint64{a, b, c}
		leadWith(t, vs, a, all...)

		var rec appRecorder
		rec.watch(nw, a, b)
		// Queued while the loop runs this closure, so they are all in the
		// intake when it next steps peer messages.
		if err := vs[a].n.do(func() {
			for i := 0; i < 5; i++ {
				from := []uint64{b, c}[i%2]
				m := raftpb.Message{Type: raftpb.MsgProp, From: from, To: a,
					Entries: []raftpb.Entry{{Data: fmt.Appendf(nil, "fwd%d", i)}}}
				if err := vs[a].n.Step(context.Background(), m); err != nil {
					t.Error(err)
				}
			}
		}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the forwarded entries applied everywhere", appliedAtLeast(vs, 7, all...))
		if got, want := rec.get(), [][]uint64{{3, 4, 5, 6, 7}}; !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("MsgApps with entries from the leader to a follower: %v, want %v", got, want)
		}
		for _, v := range vs {
			if errs := v.errs(); len(errs) > 0 {
				t.Fatal(errs)
			}
		}
	})
}

// TestLeaderNeverHoldsProposals: a leader steps every proposal while it
// leads, even when nothing it appended has committed yet (its followers'
// answers are lost). A leader that held them could step down with its own
// decisions still queued (a lease revoke made while paused past its term)
// and forward them to the next leader, which would commit them.
func TestLeaderNeverHoldsProposals(t *testing.T) {
	const a, b, c = 1, 2, 3
	nw, vs := newClusterMode(t, 3, true)
	all := []uint64{a, b, c}
	leadWith(t, vs, a, all...)

	// The followers' answers are lost: nothing commits.
	nw.setLink(b, a, false)
	nw.setLink(c, a, false)
	term := vs[a].n.Term()
	vs[a].n.Propose(nil, 1, []byte("first"))
	eventually(t, "b to persist the first proposal", func() bool {
		return vs[b].p.holds(raftpb.Entry{Index: 3, Term: term})
	})
	vs[a].n.Propose(nil, 2, []byte("second"))
	eventually(t, "b to persist the second proposal, the first still uncommitted", func() bool {
		return vs[b].p.holds(raftpb.Entry{Index: 4, Term: term})
	})
	if n := vs[a].n.props.size(); n != 0 {
		t.Fatalf("the leader's queue holds %d bytes of proposals, want none", n)
	}

	nw.setLink(b, a, true)
	nw.setLink(c, a, true)
	eventually(t, "both proposals applied everywhere", appliedAtLeast(vs, 4, all...))
	for _, v := range vs {
		if errs := v.errs(); len(errs) > 0 {
			t.Fatal(errs)
		}
	}
}

// TestFollowerForwardsOneBatchPerLeaderMessage: with asynchronous storage
// writes a follower that has forwarded a batch of proposals holds the next
// ones until it hears from the leader, then forwards them as one MsgProp.
func TestFollowerForwardsOneBatchPerLeaderMessage(t *testing.T) {
	const a, b, c = 1, 2, 3
	defer func(d time.Duration) { clusterTick = d }(clusterTick)
	clusterTick = time.Hour // no heartbeats, no tick ends the wait
	nw, vs := newClusterMode(t, 3, true)
	all := []uint64{a, b, c}
	leadWith(t, vs, a, all...)

	var mu sync.Mutex
	var props [][]string // MsgProps b sent, by entry data
	nw.mu.Lock()
	nw.observe = func(from uint64, m raftpb.Message) {
		if from == b && m.Type == raftpb.MsgProp {
			var ds []string
			for _, e := range m.Entries {
				ds = append(ds, string(e.Data))
			}
			mu.Lock()
			props = append(props, ds)
			mu.Unlock()
		}
	}
	nw.mu.Unlock()
	sent := func() [][]string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(props)
	}

	nw.setLink(a, b, false) // b does not hear from the leader
	vs[b].n.Propose(nil, 1, []byte("x"))
	eventually(t, "x committed by a and c", appliedAtLeast(vs, 3, a, c))
	vs[b].n.Propose(nil, 2, []byte("y"))
	vs[b].n.Propose(nil, 3, []byte("z"))
	for range 2 { // the second round runs propose after both were queued
		if err := vs[b].n.do(func() {}); err != nil {
			t.Fatal(err)
		}
	}
	if n := vs[b].n.props.size(); n != 2 {
		t.Fatalf("b's queue holds %d bytes, want y and z held (2)", n)
	}
	if got := sent(); !slices.EqualFunc(got, [][]string{{"x"}}, slices.Equal) {
		t.Fatalf("b forwarded %v before hearing from the leader, want only [[x]]", got)
	}

	nw.setLink(a, b, true)
	vs[a].n.Propose(nil, 4, []byte("w")) // its MsgApp is what b hears
	eventually(t, "everything applied everywhere", appliedAtLeast(vs, 6, all...))
	if got := sent(); !slices.EqualFunc(got, [][]string{{"x"}, {"y", "z"}}, slices.Equal) {
		t.Fatalf("b forwarded %v, want [[x] [y z]]", got)
	}
	for _, v := range vs {
		if errs := v.errs(); len(errs) > 0 {
			t.Fatal(errs)
		}
	}
}

// leadWith makes lead campaign and waits until it leads among all and its
// first entry (index 2, after the bootstrap's conf change) is applied on
// every one of them.
func leadWith(t *testing.T, vs map[uint64]*voter, lead uint64, all ...uint64) {
	t.Helper()
	if err := vs[lead].n.Campaign(); err != nil {
		t.Fatal(err)
	}
	eventually(t, fmt.Sprintf("%d to lead", lead), leaderIs(vs, lead, all...))
	eventually(t, "the leader's first entry applied everywhere", appliedAtLeast(vs, 2, all...))
}
