package lease

import (
	"container/heap"
	"time"
)

// expiryQueue orders the primary's leases by the time they are next due for
// an expiry check (qtime): their expiry, or a retry time after they were
// handed out as expired (etcd's LeaseExpiredNotifier). Each lease is in it
// at most once; lease.qidx is its position.
// Invariant: for every i, q[i].qidx == i.
type expiryQueue []*lease

func (q expiryQueue) Len() int           { return len(q) }
func (q expiryQueue) Less(i, j int) bool { return q[i].qtime.Before(q[j].qtime) }
func (q expiryQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].qidx, q[j].qidx = i, j
}

func (q *expiryQueue) Push(x any) {
	l := x.(*lease)
	l.qidx = len(*q)
	*q = append(*q, l)
}

func (q *expiryQueue) Pop() any {
	old := *q
	n := len(old) - 1
	l := old[n]
	old[n] = nil
	l.qidx = -1
	*q = old[:n]
	return l
}

// set queues l for time t, or moves it there.
func (q *expiryQueue) set(l *lease, t time.Time) {
	l.qtime = t
	if l.qidx >= 0 {
		heap.Fix(q, l.qidx)
		return
	}
	heap.Push(q, l)
}

// remove takes l out of the queue if it is in it.
func (q *expiryQueue) remove(l *lease) {
	if l.qidx >= 0 {
		heap.Remove(q, l.qidx)
	}
}

// reset empties the queue.
func (q *expiryQueue) reset() {
	for _, l := range *q {
		l.qidx = -1
	}
	*q = nil
}

// checkpointItem is a scheduled checkpoint of lease id at time at.
type checkpointItem struct {
	id int64
	at time.Time
}

// checkpointQueue orders scheduled checkpoints by time. A lease may appear
// more than once, and a revoked lease's items stay until they come due and
// are skipped, as in etcd.
type checkpointQueue []checkpointItem

func (q checkpointQueue) Len() int           { return len(q) }
func (q checkpointQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q checkpointQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *checkpointQueue) Push(x any)        { *q = append(*q, x.(checkpointItem)) }
func (q *checkpointQueue) Pop() any {
	old := *q
	n := len(old) - 1
	it := old[n]
	*q = old[:n]
	return it
}
