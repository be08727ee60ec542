package raftnode

import (
	"errors"
	"sync"
	"testing"

	"go.etcd.io/raft/v3"
)

// droppedLog records what OnDropped receives, per member.
type droppedLog struct {
	mu   sync.Mutex
	errs map[uint64]error // token → error
}

func (d *droppedLog) get(token uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.errs[token]
}

// applies reports whether v applied an entry holding data.
func (v *voter) applies(data string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, d := range v.data {
		if d == data {
			return true
		}
	}
	return false
}

// TestProposeAsLeaderIsDroppedByADeposedLeader builds a leader that was cut
// off while the others elected a successor, then learned of it. A plain
// proposal it makes now is forwarded to the new leader and committed; one
// bound to the term it led in is dropped with ErrNotLeader and never
// reaches any log. The new leader's proposals bound to its own term commit;
// bound to a term it does not lead in, they are dropped too.
func TestProposeAsLeaderIsDroppedByADeposedLeader(t *testing.T) {
	bothModes(t, testProposeAsLeaderIsDroppedByADeposedLeader)
}

func testProposeAsLeaderIsDroppedByADeposedLeader(t *testing.T, async bool) {
	dropped := &droppedLog{errs: map[uint64]error{}}
	old := clusterConfigure
	clusterConfigure = func(id uint64, _ *raft.Config, nc *Config) {
		nc.OnDropped = func(tokens []uint64, err error) {
			dropped.mu.Lock()
			defer dropped.mu.Unlock()
			for _, tok := range tokens {
				dropped.errs[tok] = err
			}
		}
	}
	defer func() { clusterConfigure = old }()
	ids := []uint64{1, 2, 3}
	nw, vs := newClusterMode(t, 3, async)

	if err := vs[1].n.Campaign(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "member 1 leading", leaderIs(vs, 1, ids...))
	oldTerm := vs[1].n.Term()
	vs[1].n.ProposeAsLeader(nil, 1, oldTerm, []byte("in-term"))
	eventually(t, "the in-term proposal applied everywhere", func() bool {
		return vs[1].applies("in-term") && vs[2].applies("in-term") && vs[3].applies("in-term")
	})

	// Member 1 is cut off; 2 takes over. Member 1 still believes it leads.
	nw.setBoth(1, []uint64{2, 3}, false)
	if err := vs[2].n.Campaign(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "member 2 leading 2 and 3", leaderIs(vs, 2, 2, 3))
	newTerm := vs[2].n.Term()
	if !vs[1].n.IsLeader() || vs[1].n.Term() != oldTerm {
		t.Fatalf("member 1: leader %v in term %d, want still leading in term %d", vs[1].n.IsLeader(), vs[1].n.Term(), oldTerm)
	}

	// Healed, member 1 hears from 2 and follows it.
	nw.setBoth(1, []uint64{2, 3}, true)
	vs[2].n.Propose(nil, 2, []byte("heal"))
	eventually(t, "member 1 following 2", leaderIs(vs, 2, 1))

	vs[1].n.ProposeAsLeader(nil, 3, oldTerm, []byte("stale-decision"))
	vs[1].n.Propose(nil, 4, []byte("forwarded"))
	vs[2].n.ProposeAsLeader(nil, 5, newTerm, []byte("new-leader-decision"))
	vs[2].n.ProposeAsLeader(nil, 6, oldTerm, []byte("wrong-term"))
	eventually(t, "the forwarded and the new leader's proposals applied everywhere", func() bool {
		for _, id := range ids {
			if !vs[id].applies("forwarded") || !vs[id].applies("new-leader-decision") {
				return false
			}
		}
		return true
	})
	// Everything member 1 and 2 queued before is settled once a barrier
	// proposed after it is applied everywhere.
	vs[2].n.Propose(nil, 7, []byte("barrier"))
	eventually(t, "the barrier applied everywhere", func() bool {
		return vs[1].applies("barrier") && vs[2].applies("barrier") && vs[3].applies("barrier")
	})
	for _, id := range ids {
		for _, bad := range []string{"stale-decision", "wrong-term"} {
			if vs[id].applies(bad) {
				t.Errorf("member %d applied %q", id, bad)
			}
		}
	}
	for tok, want := range map[uint64]error{3: ErrNotLeader, 6: ErrNotLeader, 4: nil, 5: nil} {
		if got := dropped.get(tok); !errors.Is(got, want) || (want == nil && got != nil) {
			t.Errorf("proposal %d: OnDropped got %v, want %v", tok, got, want)
		}
	}
	for _, v := range vs {
		if errs := v.errs(); len(errs) > 0 {
			t.Fatal(errs)
		}
	}
}
