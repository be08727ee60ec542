package server

import (
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// proposalQueue gathers the proposals of concurrent requests so that one
// goroutine hands them to raft as a single MsgProp per batch. Each request
// then does no raft work of its own (no hand-off to the raft goroutine and
// back per entry), and raft steps once per batch instead of once per entry.
//
// Threading: add is called by any number of request goroutines; take only
// by the proposer loop.
type proposalQueue struct {
	mu      sync.Mutex
	pending []raftpb.Entry
	bytes   int
	wake    chan struct{} // capacity 1: "pending became non-empty"
}

// maxProposalBatchBytes bounds one MsgProp, far below raft's limit on
// uncommitted entries (a batch over that limit would be dropped whole).
const maxProposalBatchBytes = 16 << 20

func newProposalQueue() *proposalQueue {
	return &proposalQueue{wake: make(chan struct{}, 1)}
}

// add queues one entry's data for the proposer loop.
func (q *proposalQueue) add(data []byte) {
	q.mu.Lock()
	q.pending = append(q.pending, raftpb.Entry{Data: data})
	q.bytes += len(data)
	first := len(q.pending) == 1
	q.mu.Unlock()
	if first {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// take removes and returns the queued entries, at most
// maxProposalBatchBytes of them (at least one). The returned slice is the
// caller's: raft reads it after Step returns, so it is never reused.
func (q *proposalQueue) take() []raftpb.Entry {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.bytes <= maxProposalBatchBytes {
		ents := q.pending
		q.pending, q.bytes = nil, 0
		return ents
	}
	n, size := 0, 0
	for n < len(q.pending) && (n == 0 || size+len(q.pending[n].Data) <= maxProposalBatchBytes) {
		size += len(q.pending[n].Data)
		n++
	}
	ents := q.pending[:n:n]
	q.pending = append([]raftpb.Entry(nil), q.pending[n:]...)
	q.bytes -= size
	// The rest goes out in the next round.
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return ents
}

// proposeLoop feeds queued proposals to raft until the server stops. A batch
// raft refuses (the node stopped, or no leader appeared before the deadline)
// is not retried: its requests end on their own deadline or on stop, as a
// lost proposal does in etcd.
func (s *Server) proposeLoop() {
	for {
		select {
		case <-s.props.wake:
		case <-s.stopping:
			return
		}
		ents := s.props.take()
		if len(ents) == 0 {
			continue
		}
		dl := s.deadlines.get(time.Now())
		if err := s.node.Raft().Step(dl, raftpb.Message{Type: raftpb.MsgProp, Entries: ents}); err != nil {
			s.lg.Debug("raft refused a batch of proposals")
		}
	}
}
