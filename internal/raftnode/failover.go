package raftnode

import (
	"slices"

	"go.etcd.io/raft/v3"
	"go.uber.org/zap"
)

// Faster failover when the leader's process is gone.
//
// raft elects a new leader once a follower's randomized election timeout
// (ElectionTick plus up to ElectionTick - 1 ticks more) passes without a
// message from the leader: with etcd's defaults 1 to 2 s, about 1.3 s
// for the first of two followers. The randomization is there to keep
// followers from splitting the vote when they cannot know whether the
// leader is alive. When the leader's peer URL refuses connections they do
// know: nothing listens there, the process crashed or was killed. Then a
// follower campaigns as soon as the other voters can grant it: with
// CheckQuorum a voter ignores a (pre-)vote while it heard from a leader
// less than ElectionTick ticks ago, so the earliest useful moment is
// ElectionTick ticks after the leader's last message, plus one tick for
// members whose tick clocks are not in phase. To keep the survivors from
// splitting the vote, each waits one more tick per surviving voter ranked
// before it by ID.
//
// Safety does not depend on any of this: any member may campaign at any
// time in raft. With PreVote (the only mode LeaderGone is set in) a
// campaign that cannot win leaves no trace: no term is raised, and raft's
// own timeout takes over. A leader that is only slow or cut off still
// accepts connections (or times out), so it is never taken for gone.

// campaignIfLeaderGone starts a campaign when this follower has heard
// nothing from its leader for long enough and the leader is known to be
// gone. Called on every tick. Loop goroutine only.
func (n *Node) campaignIfLeaderGone() {
	if n.cfg.LeaderGone == nil || n.cfg.ElectionTicks <= 0 || n.quiet <= n.cfg.ElectionTicks {
		return
	}
	st := n.rn.BasicStatus()
	if st.RaftState != raft.StateFollower || st.Lead == raft.None || !n.cfg.LeaderGone(st.Lead) {
		return
	}
	// Status copies the progress map: only once the leader is known gone.
	rank, ok := survivorRank(n.rn.Status().Config.Voters.IDs(), st.Lead, st.ID)
	if !ok || n.quiet < n.cfg.ElectionTicks+1+rank {
		return
	}
	n.cfg.Logger.Info("leader's peer URL refuses connections: campaigning without waiting for the randomized election timeout",
		zap.Uint64("lost-leader", st.Lead), zap.Int("ticks-since-leader-message", n.quiet), zap.Int("rank", rank))
	if err := n.rn.Campaign(); err != nil {
		n.cfg.Logger.Warn("early campaign refused by raft", zap.Error(err))
	}
}

// survivorRank is the position of self among the voters other than the
// lost leader, by ID; ok is false when self is not such a voter (a learner
// never campaigns).
func survivorRank(voters map[uint64]struct{}, lead, self uint64) (rank int, ok bool) {
	ids := make([]uint64, 0, len(voters))
	for id := range voters {
		if id != lead {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if i, found := slices.BinarySearch(ids, self); found {
		return i, true
	}
	return 0, false
}
