package server

import "sync"

// waiters pairs proposals with their apply results by request ID.
//
// Threading: Register is called by proposers, Trigger by the apply goroutine;
// both are safe for concurrent use. A result is delivered at most once.
type waiters struct {
	shards [16]waitShard
}

type waitShard struct {
	mu sync.Mutex
	m  map[uint64]chan applyResult
}

func newWaiters() *waiters {
	w := &waiters{}
	for i := range w.shards {
		w.shards[i].m = map[uint64]chan applyResult{}
	}
	return w
}

func (w *waiters) shard(id uint64) *waitShard { return &w.shards[id%uint64(len(w.shards))] }

// Register returns the channel that will receive the result for id.
func (w *waiters) Register(id uint64) <-chan applyResult {
	s := w.shard(id)
	ch := make(chan applyResult, 1)
	s.mu.Lock()
	s.m[id] = ch
	s.mu.Unlock()
	return ch
}

// Trigger delivers the result for id if anyone waits for it.
func (w *waiters) Trigger(id uint64, r applyResult) {
	s := w.shard(id)
	s.mu.Lock()
	ch, ok := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	if ok {
		ch <- r
	}
}

// Cancel forgets id (the proposer gave up).
func (w *waiters) Cancel(id uint64) {
	s := w.shard(id)
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}
