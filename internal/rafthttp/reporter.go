package rafthttp

import (
	"sync"

	"go.etcd.io/raft/v3"
)

// report is one call to make on Raft: ReportSnapshot when snapshot is set,
// else ReportUnreachable.
type report struct {
	id       uint64
	snapshot bool
	status   raft.SnapshotStatus
}

// reporter hands ReportUnreachable and ReportSnapshot calls to Raft from
// its own goroutine, so that the transport can decide them anywhere
// (including inside Send, which raftnode calls from the goroutine that
// serves those very reports) without ever blocking.
//
// Unreachable reports for a peer that already has one pending are merged:
// raft only needs to hear once that its last messages may be lost. The
// queue is therefore bounded by the number of peers plus the snapshot
// reports, of which raft has at most one in flight per peer.
type reporter struct {
	r Raft

	mu      sync.Mutex
	queue   []report            // protected by mu
	pending map[uint64]struct{} // peers with an unreachable report in queue; protected by mu
	stopped bool                // protected by mu

	wake chan struct{} // capacity 1: "queue is not empty"
	stop chan struct{}
	done chan struct{}
}

func newReporter(r Raft) *reporter {
	rp := &reporter{
		r:       r,
		pending: make(map[uint64]struct{}),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go rp.run()
	return rp
}

// unreachable queues ReportUnreachable(id). Never blocks.
func (rp *reporter) unreachable(id uint64) {
	rp.mu.Lock()
	if _, ok := rp.pending[id]; ok || rp.stopped {
		rp.mu.Unlock()
		return
	}
	rp.pending[id] = struct{}{}
	rp.queue = append(rp.queue, report{id: id})
	rp.mu.Unlock()
	rp.signal()
}

// snapshot queues ReportSnapshot(id, status). Never blocks.
func (rp *reporter) snapshot(id uint64, status raft.SnapshotStatus) {
	rp.mu.Lock()
	if rp.stopped {
		rp.mu.Unlock()
		return
	}
	rp.queue = append(rp.queue, report{id: id, snapshot: true, status: status})
	rp.mu.Unlock()
	rp.signal()
}

func (rp *reporter) signal() {
	select {
	case rp.wake <- struct{}{}:
	default:
	}
}

func (rp *reporter) run() {
	defer close(rp.done)
	for {
		select {
		case <-rp.stop:
			return
		case <-rp.wake:
		}
		rp.mu.Lock()
		batch := rp.queue
		rp.queue = nil
		clear(rp.pending)
		rp.mu.Unlock()
		for _, r := range batch {
			select {
			case <-rp.stop:
				return
			default:
			}
			if r.snapshot {
				rp.r.ReportSnapshot(r.id, r.status)
			} else {
				rp.r.ReportUnreachable(r.id)
			}
		}
	}
}

// close drops what is still queued and waits for a report in progress.
// Raft must not block forever in a report (raftnode's return once it has
// stopped).
func (rp *reporter) close() {
	rp.mu.Lock()
	rp.stopped = true
	rp.queue = nil
	rp.mu.Unlock()
	close(rp.stop)
	<-rp.done
}
