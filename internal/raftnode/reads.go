package raftnode

import (
	"bytes"
	"encoding/binary"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Read-index rounds of a leader with peers (asynchronous mode). raft's leader
// confirms its leadership for every read-index request on its own: each one,
// this member's or a follower's MsgReadIndex, costs a heartbeat to every
// follower and their answers. With readers on every member the leader ran one
// such round per request of each member, back to back. Instead, the loop
// gathers the requests (its own and the MsgReadIndex followers send) and asks
// raft for one read index for all of them, with a context of its own, while
// no such round is in flight; the requests arriving meanwhile wait for the
// next one. When raft answers, every gathered request gets that index: this
// member's through OnReadStates with its own context, a follower's as the
// MsgReadIndexResp raft would have sent it (the leader's term, the follower's
// context), so followers, etcd's included, see the usual answer.
//
// Why one index serves them all: a request's read index must be a commit index
// the leader held at some moment after the request reached it, with its
// leadership confirmed after that moment too. The shared round starts after
// every request it serves arrived, and raft confirms leadership (a quorum of
// heartbeat answers) after the round starts, so its index qualifies for each.
// raft's own rules still apply to the round: no answer before the leader has
// committed an entry of its term, none without a quorum.
//
// If leadership or the term changes before the answer, the gathered requests
// are dropped, as raft drops its pending read-only requests when it steps
// down; readers retry (the server's reader after 500 ms, a follower's on its
// own schedule).

// pendingRead is one read-index request waiting for a shared round.
type pendingRead struct {
	from uint64 // 0: this member
	ctx  []byte
}

// readRound is the state of the shared rounds. Loop goroutine only.
type readRound struct {
	gathered []pendingRead // waiting for the next round
	waiting  []pendingRead // answered by the round in flight
	ctx      []byte        // the round in flight's context, nil when none
	term     uint64        // the term the round in flight was asked in
	ticks    int           // ticks since the round in flight was asked
	seq      uint64
}

// maxReadRoundTicks bounds how long a shared round may stay unanswered
// before new requests stop waiting for it. raft answers within a heartbeat
// round trip while a quorum is reachable, and a lost heartbeat's context is
// carried again by the next periodic heartbeat.
const maxReadRoundTicks = 10

// roundCtxPrefix marks the context of a shared round. The server's contexts
// are 8 bytes, a shared round's 10, so the two never meet.
var roundCtxPrefix = []byte{0xca, 0x1e}

// sharesReads reports whether read-index requests go through shared rounds.
func (n *Node) sharesReads(st raft.BasicStatus) bool {
	return n.cfg.AsyncStorageWrites && st.RaftState == raft.StateLeader
}

// readIndex asks for a read index for this member (ctx comes back through
// OnReadStates). Loop goroutine only.
func (n *Node) readIndex(ctx []byte) {
	if n.sharesReads(n.rn.BasicStatus()) {
		n.rr.gathered = append(n.rr.gathered, pendingRead{ctx: ctx})
		return
	}
	n.rn.ReadIndex(ctx)
}

// gatherRead takes a follower's MsgReadIndex into the next shared round and
// reports whether it did. Loop goroutine only.
func (n *Node) gatherRead(m *raftpb.Message) bool {
	if m.Type != raftpb.MsgReadIndex || len(m.Entries) != 1 || m.From == raft.None || m.From == n.id ||
		!n.sharesReads(n.rn.BasicStatus()) {
		return false
	}
	n.rr.gathered = append(n.rr.gathered, pendingRead{from: m.From, ctx: m.Entries[0].Data})
	return true
}

// startReadRound asks raft for one read index for every gathered request,
// unless a shared round is in flight. Requests gathered while this member
// led that it no longer leads go to raft one by one (raft forwards them to
// the new leader or drops them). Loop goroutine only.
func (n *Node) startReadRound() {
	if len(n.rr.gathered) == 0 {
		return
	}
	st := n.rn.BasicStatus()
	if !n.sharesReads(st) {
		n.ungatherReads()
		return
	}
	if n.rr.ctx != nil && (st.Term != n.rr.term || n.rr.ticks > maxReadRoundTicks) {
		// raft forgot it (a new term resets its read-only state), or its
		// answer is overdue: the next round serves the new requests, and
		// the old ones are asked again by their readers.
		n.dropReadRound()
	}
	if n.rr.ctx != nil {
		return
	}
	n.rr.seq++
	ctx := binary.BigEndian.AppendUint64(append([]byte(nil), roundCtxPrefix...), n.rr.seq)
	n.rr.ctx, n.rr.term = ctx, st.Term
	n.rr.waiting, n.rr.gathered = n.rr.gathered, nil
	n.rn.ReadIndex(ctx)
}

// ungatherReads hands gathered requests back to raft one by one.
func (n *Node) ungatherReads() {
	for _, r := range n.rr.gathered {
		if r.from == raft.None {
			n.rn.ReadIndex(r.ctx)
		} else {
			n.stepPeer(raftpb.Message{Type: raftpb.MsgReadIndex, From: r.from, To: n.id,
				Entries: []raftpb.Entry{{Data: r.ctx}}})
		}
	}
	n.rr.gathered = nil
}

// dropReadRound forgets the round in flight (leadership or term changed).
func (n *Node) dropReadRound() {
	n.rr.ctx, n.rr.waiting, n.rr.ticks = nil, nil, 0
}

// answerReads replaces the answer of a shared round in rs with the answers of
// the requests it served (this member's, returned; followers', sent) and
// returns the read states for OnReadStates. Loop goroutine only.
func (n *Node) answerReads(rs []raft.ReadState) []raft.ReadState {
	if n.rr.ctx == nil {
		return rs
	}
	out := rs[:0:0]
	for _, s := range rs {
		if !bytes.Equal(s.RequestCtx, n.rr.ctx) {
			out = append(out, s)
			continue
		}
		st := n.rn.BasicStatus()
		if st.RaftState == raft.StateLeader && st.Term == n.rr.term {
			var resps []raftpb.Message
			for _, r := range n.rr.waiting {
				if r.from == raft.None {
					out = append(out, raft.ReadState{Index: s.Index, RequestCtx: r.ctx})
					continue
				}
				resps = append(resps, raftpb.Message{Type: raftpb.MsgReadIndexResp, From: n.id, To: r.from,
					Term: n.rr.term, Index: s.Index, Entries: []raftpb.Entry{{Data: r.ctx}}})
			}
			n.send(resps)
		}
		n.dropReadRound()
	}
	return out
}
