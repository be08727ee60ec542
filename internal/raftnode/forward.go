package raftnode

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Proposals forwarded by peers. A follower forwards its proposals to the
// leader as MsgProps (etcd's members one per proposal, cairn's one per batch),
// and raft's leader answers every MsgProp it steps with its own MsgApp to each
// follower, hence its own MsgAppResp back and, as it commits, its own
// commit-carrying MsgApp: the peer messages, and their encoding, channel
// hand-offs and Steps on both sides, grow with the number of MsgProps the
// leader steps, not with the number of entries. So the loop does not step a
// forwarded MsgProp on its own: it gathers the entries of every forwarded
// MsgProp of a burst and steps them, with its own queued proposals, as one
// MsgProp (propose). raft handles a MsgProp's entries one by one, so one
// message of many entries is what several messages would have been, except
// that raft drops it whole (no leader, a leadership transfer in progress,
// the uncommitted-size limit), as it would have dropped each of them; a
// forwarded proposal that raft drops is lost either way, and its proposer's
// request times out, as in etcd. Only proposals of normal entries are
// gathered: a conf change is stepped as it came.

// gatherForwarded takes the entries of m, when it is a forwarded proposal of
// normal entries, into n.fwd for propose, and reports whether it did. Loop
// goroutine only.
func (n *Node) gatherForwarded(m *raftpb.Message) bool {
	if m.Type != raftpb.MsgProp {
		return false
	}
	size := 0
	for i := range m.Entries {
		if m.Entries[i].Type != raftpb.EntryNormal {
			return false
		}
		size += len(m.Entries[i].Data)
	}
	if n.fwdBytes > 0 && n.fwdBytes+size > maxProposalBatchBytes {
		// Keep one MsgProp within the batch bound: what is gathered so
		// far goes first, on its own.
		n.stepPeer(raftpb.Message{Type: raftpb.MsgProp, Entries: n.fwd})
		n.fwd, n.fwdBytes = nil, 0
	}
	n.fwd = append(n.fwd, m.Entries...)
	n.fwdBytes += size
	return true
}

// holdProposals reports whether propose should leave the proposals queued
// (and the forwarded ones gathered) for now. In asynchronous mode (members
// with peers):
//
//   - a leader never holds. It did once (a new batch waited until every
//     entry it had appended was committed), and that let a leader paused
//     past its term keep its own lease revokes queued until it had stepped
//     down, then forward them to the new leader, which committed them:
//     leases kept alive through the new leader ended early (robustness
//     cairn-3/pause-leader/seed-17). A proposal a leader makes is stepped
//     while it still leads, as etcd's are, so a stale leader's decision
//     stays in its own uncommitted log;
//   - a follower forwards a new batch to the leader only once it has heard
//     from the leader (an append or a heartbeat) since it forwarded the last
//     one, or a tick has passed, or the leader changed: the leader takes in
//     one batch per round trip anyway, and one MsgProp per round trip
//     instead of one per proposal spares both sides a message, a Ready and a
//     write each.
//
// Nothing waits once the held data reaches maxProposalBatchBytes. A member
// without a leader holds its own proposals for want of one (propose), not
// here. Loop goroutine only.
func (n *Node) holdProposals(st raft.BasicStatus) bool {
	if !n.cfg.AsyncStorageWrites {
		return false
	}
	switch {
	case st.RaftState == raft.StateFollower && st.Lead != raft.None && n.forwarded:
	default:
		return false
	}
	return n.fwdBytes+n.props.size() < maxProposalBatchBytes
}

// heardFrom ends a follower's wait after forwarding a batch (holdProposals)
// when m comes from the leader, and restarts the count of quiet ticks
// (failover.go) on any message from it. Loop goroutine only.
func (n *Node) heardFrom(m *raftpb.Message) {
	if m.From == n.lead.Load() {
		n.quiet = 0
	}
	if n.forwarded && m.From == n.lead.Load() &&
		(m.Type == raftpb.MsgApp || m.Type == raftpb.MsgHeartbeat || m.Type == raftpb.MsgSnap) {
		n.forwarded = false
	}
}

// noteAppend records the last index of a log append the loop hands to the
// append goroutine. Loop goroutine only.
func (n *Node) noteAppend(m *raftpb.Message) {
	switch {
	case len(m.Entries) > 0:
		n.lastAppended = m.Entries[len(m.Entries)-1].Index
	case m.Snapshot != nil && !raft.IsEmptySnap(*m.Snapshot):
		n.lastAppended = m.Snapshot.Metadata.Index
	}
}
