package raftnode

import (
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
)

func TestSurvivorRank(t *testing.T) {
	set := func(ids ...uint64) map[uint64]struct{} {
		m := map[uint64]struct{}{}
		for _, id := range ids {
			m[id] = struct{}{}
		}
		return m
	}
	for _, tc := range []struct {
		name       string
		voters     map[uint64]struct{}
		lead, self uint64
		rank       int
		ok         bool
	}{
		{"first survivor", set(1, 2, 3), 1, 2, 0, true},
		{"second survivor", set(1, 2, 3), 1, 3, 1, true},
		{"leader ranked first is skipped", set(5, 9, 2), 2, 9, 1, true},
		{"five members", set(10, 20, 30, 40, 50), 30, 40, 2, true},
		{"learner", set(1, 2, 3), 1, 4, 0, false},
		{"leader not a voter any more", set(2, 3), 1, 3, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rank, ok := survivorRank(tc.voters, tc.lead, tc.self)
			if rank != tc.rank || ok != tc.ok {
				t.Fatalf("survivorRank = %d, %v; want %d, %v", rank, ok, tc.rank, tc.ok)
			}
		})
	}
}

// TestCampaignWhenLeaderGone: raft's own election timer is off in the test
// cluster (ElectionTick is hours of ticks), so a new leader can only come
// from the early campaign; CheckQuorum is off so that voters grant it
// without waiting out a lease raft would measure in those hours of ticks.
func TestCampaignWhenLeaderGone(t *testing.T) {
	const electionTicks = 10
	for _, tc := range []struct {
		name string
		gone bool
	}{
		{"refused: the first survivor by ID leads", true},
		{"silent but not refused: nobody campaigns early", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gone atomic.Bool
			clusterConfigure = func(_ uint64, rc *raft.Config, nc *Config) {
				rc.PreVote = true
				nc.ElectionTicks = electionTicks
				nc.LeaderGone = func(lead uint64) bool { return lead == 1 && gone.Load() }
			}
			t.Cleanup(func() { clusterConfigure = nil })
			nw, vs := newClusterMode(t, 3, true)
			if err := vs[1].n.Campaign(); err != nil {
				t.Fatal(err)
			}
			eventually(t, "1 to lead", leaderIs(vs, 1, 1, 2, 3))
			eventually(t, "1's first entry applied everywhere", appliedAtLeast(vs, 2, 1, 2, 3))
			term := vs[2].n.Term()

			nw.setBoth(1, []uint64{2, 3}, false)
			vs[1].n.Stop()
			gone.Store(tc.gone)
			if tc.gone {
				eventually(t, "2 to lead", leaderIs(vs, 2, 2, 3))
				if got := vs[3].n.Term(); got != term+1 {
					t.Fatalf("term after the early campaign = %d, want %d (one election, no split vote)", got, term+1)
				}
				return
			}
			// Nothing may happen: wait many election timeouts' worth of ticks.
			deadline := time.Now().Add(5 * electionTicks * clusterTick)
			for time.Now().Before(deadline) {
				if !leaderIs(vs, 1, 2, 3)() || vs[2].n.Term() != term || vs[3].n.Term() != term {
					t.Fatalf("a survivor campaigned while the leader was not known to be gone (leaders %d, %d)",
						vs[2].n.Leader(), vs[3].n.Leader())
				}
				time.Sleep(clusterTick)
			}
		})
	}
}
