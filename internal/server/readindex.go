package server

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.uber.org/zap"
)

// readBatch is one round of ReadIndex shared by every linearizable reader
// that arrived while the previous round was in flight.
type readBatch struct {
	done chan struct{}
	err  error
}

func newReadBatch() *readBatch { return &readBatch{done: make(chan struct{})} }

func (b *readBatch) finish(err error) {
	b.err = err
	close(b.done)
}

// readIndexer asks raft for a read index (raftnode.Node); the answer comes
// back through onReadStates.
type readIndexer interface {
	ReadIndex(rctx []byte) error
}

// reader runs the ReadIndex protocol for linearizable reads, batched: all
// readers waiting at the start of a round share its single ReadIndex.
type reader struct {
	lg       *zap.Logger
	node     readIndexer
	ids      *reqIDGen
	applied  *indexWaiter
	timeout  time.Duration
	stopping <-chan struct{}

	wake   chan struct{}       // a reader is waiting
	states chan raft.ReadState // from the Ready loop
	mu     sync.RWMutex        // protects cur
	cur    *readBatch          // the batch new readers join
}

func newReader(lg *zap.Logger, node readIndexer, ids *reqIDGen, applied *indexWaiter, timeout time.Duration, stopping <-chan struct{}) *reader {
	return &reader{
		lg: lg, node: node, ids: ids, applied: applied, timeout: timeout, stopping: stopping,
		wake:   make(chan struct{}, 1),
		states: make(chan raft.ReadState, 16),
		cur:    newReadBatch(),
	}
}

// onReadStates is called from the Ready loop; it never blocks it.
func (r *reader) onReadStates(rs []raft.ReadState) {
	for _, s := range rs {
		select {
		case r.states <- s:
		default:
			// The reader goroutine is behind; it times out and retries.
		}
	}
}

// wait blocks until a read at this moment may be served from local state.
func (r *reader) wait(ctx context.Context) error {
	r.mu.RLock()
	b := r.cur
	r.mu.RUnlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	case <-r.stopping:
		return ErrStopped
	}
}

func (r *reader) run() {
	for {
		select {
		case <-r.wake:
		case <-r.stopping:
			r.mu.Lock()
			r.cur.finish(ErrStopped)
			r.mu.Unlock()
			return
		}
		r.mu.Lock()
		b := r.cur
		r.cur = newReadBatch()
		r.mu.Unlock()
		b.finish(r.round())
	}
}

var errReadRetry = errors.New("read index retry")

// round performs one ReadIndex and waits for the apply to catch up.
func (r *reader) round() error {
	deadline := time.NewTimer(r.timeout)
	defer deadline.Stop()
	for {
		idx, err := r.readIndex(deadline.C)
		if errors.Is(err, errReadRetry) {
			continue
		}
		if err != nil {
			return err
		}
		select {
		case <-r.applied.Wait(idx):
			return nil
		case <-deadline.C:
			return ErrTimeout
		case <-r.stopping:
			return ErrStopped
		}
	}
}

func (r *reader) readIndex(deadline <-chan time.Time) (uint64, error) {
	id := r.ids.Next()
	var rctx [8]byte
	binary.BigEndian.PutUint64(rctx[:], id)
	if err := r.node.ReadIndex(rctx[:]); err != nil {
		return 0, ErrStopped
	}
	// raft drops a ReadIndex when there is no leader; retry it at a short
	// interval until the deadline.
	retry := time.NewTimer(500 * time.Millisecond)
	defer retry.Stop()
	for {
		select {
		case rs := <-r.states:
			if len(rs.RequestCtx) == 8 && binary.BigEndian.Uint64(rs.RequestCtx) == id {
				return rs.Index, nil
			}
			// A stale answer from an earlier, timed-out round.
		case <-retry.C:
			return 0, errReadRetry
		case <-deadline:
			return 0, ErrTimeout
		case <-r.stopping:
			return 0, ErrStopped
		}
	}
}
