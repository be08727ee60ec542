package server

import (
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// waiters pairs proposals with their apply results by request ID.
//
// Threading: Register is called by proposers, Trigger by the apply goroutine;
// both are safe for concurrent use. A result is delivered at most once.
type waiters struct {
	shards [16]waitShard
}

type waitShard struct {
	mu sync.Mutex
	m  map[uint64]waiter
}

type waiter struct {
	ch  chan applyResult
	req *pb.InternalRaftRequest
}

func newWaiters() *waiters {
	w := &waiters{}
	for i := range w.shards {
		w.shards[i].m = map[uint64]waiter{}
	}
	return w
}

func (w *waiters) shard(id uint64) *waitShard { return &w.shards[id%uint64(len(w.shards))] }

// Register returns the channel that will receive the result for id. req is
// the request proposed under id (nil if none); the apply goroutine may use
// it instead of decoding the entry, so it must not change afterwards.
func (w *waiters) Register(id uint64, req *pb.InternalRaftRequest) chan applyResult {
	s := w.shard(id)
	ch, _ := resultChans.Get().(chan applyResult)
	if ch == nil {
		ch = make(chan applyResult, 1)
	}
	s.mu.Lock()
	s.m[id] = waiter{ch: ch, req: req}
	s.mu.Unlock()
	return ch
}

// Proposal returns the request registered under id, or nil.
func (w *waiters) Proposal(id uint64) *pb.InternalRaftRequest {
	s := w.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id].req
}

// Trigger delivers the result for id if anyone waits for it.
func (w *waiters) Trigger(id uint64, r applyResult) {
	s := w.shard(id)
	s.mu.Lock()
	wt, ok := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	if ok {
		wt.ch <- r
	}
}

// resultChans recycles the result channels of proposals whose result was
// received: a channel per request was one of the write path's allocations.
var resultChans sync.Pool

// Recycle returns the channel of a result that was received from it. Only
// then is it certain that nothing sends on it any more (Trigger removes the
// waiter before sending; a cancelled waiter's channel may still get a send
// and is left to the garbage collector).
func (w *waiters) Recycle(ch chan applyResult) { resultChans.Put(ch) }

// Cancel forgets id (the proposer gave up).
func (w *waiters) Cancel(id uint64) {
	s := w.shard(id)
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}
