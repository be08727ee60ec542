package raftnode

import (
	"context"
	"sync"

	"go.etcd.io/raft/v3"
)

// proposal is one entry's data on its way to raft.
type proposal struct {
	ctx   context.Context // done when the proposer gave up; may be nil
	token uint64
	data  []byte
	// leaderOnly: the proposal reaches raft only while this member leads
	// in term (ProposeAsLeader); otherwise it is dropped.
	leaderOnly bool
	term       uint64
}

// stale reports whether p is bound to a term in which this member, whose
// raft status is st, no longer (or not yet) leads.
func (p *proposal) stale(st raft.BasicStatus) bool {
	return p.leaderOnly && (st.RaftState != raft.StateLeader || st.Term != p.term)
}

// proposalQueue gathers the proposals of concurrent requests so that the
// loop hands them to raft as a single MsgProp per batch: a request does no
// raft work of its own, and raft steps once per batch instead of once per
// entry.
//
// Threading: add is called by any number of goroutines; take only by the
// loop.
type proposalQueue struct {
	mu      sync.Mutex
	pending []proposal
	bytes   int
	wake    chan struct{} // capacity 1: "pending became non-empty"
	// spare is a batch the loop gave back (recycle), reused as pending's
	// next backing array instead of growing a new one batch after batch.
	spare []proposal
}

// maxProposalBatchBytes bounds one MsgProp, far below raft's limit on
// uncommitted entries (a batch over that limit would be dropped whole).
const maxProposalBatchBytes = 16 << 20

func newProposalQueue() *proposalQueue {
	return &proposalQueue{wake: make(chan struct{}, 1)}
}

// add queues one proposal for the loop.
func (q *proposalQueue) add(p proposal) {
	q.mu.Lock()
	q.pending = append(q.pending, p)
	q.bytes += len(p.data)
	first := len(q.pending) == 1
	q.mu.Unlock()
	if first {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// size is the data size of the queued proposals.
func (q *proposalQueue) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// take removes and returns the queued proposals, at most
// maxProposalBatchBytes of them (at least one). The returned slice is the
// caller's; the queue never writes to it again.
func (q *proposalQueue) take() []proposal {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.bytes <= maxProposalBatchBytes {
		ents := q.pending
		q.pending, q.bytes = q.spare, 0
		q.spare = nil
		return ents
	}
	n, size := 0, 0
	for n < len(q.pending) && (n == 0 || size+len(q.pending[n].data) <= maxProposalBatchBytes) {
		size += len(q.pending[n].data)
		n++
	}
	ents := q.pending[:n:n]
	q.pending = append([]proposal(nil), q.pending[n:]...)
	q.bytes -= size
	// The rest goes out in the next round.
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return ents
}

// recycle gives back a batch returned by take once the loop is done with
// it; the queue may reuse its backing array. Loop goroutine only.
func (q *proposalQueue) recycle(b []proposal) {
	if cap(b) > maxRecycledBatch {
		return
	}
	clear(b) // drop the references to contexts and data
	q.mu.Lock()
	if q.spare == nil {
		q.spare = b[:0]
	}
	q.mu.Unlock()
}

// maxRecycledBatch bounds the batch kept for reuse, so a burst does not pin
// a large array.
const maxRecycledBatch = 4096
