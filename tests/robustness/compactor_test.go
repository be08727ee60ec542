package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Compaction in the traffic. The store's history is the reference every
// check uses, and a compaction removes its old revisions, so the compactor
// reads the revisions it is about to compact (serializable ranges at each
// revision on m1, as readHistory does) before it sends the Compact; the
// final read after the traffic starts where it stopped. Watches whose start
// falls below a compaction are cancelled with its revision and resume from
// it (watchtraffic.go); the watch checker excuses exactly those gaps.

// compaction is one Compact request the compactor sent.
type compaction struct {
	Rev          int64
	Call, Return time.Duration
	Err          string // "": acknowledged; else it may or may not have been applied
}

// compactor compacts the store now and then, 5-45 revisions
// behind the current one, through m1.
type compactor struct {
	c     *cluster
	rec   *recorder
	rnd   *rand.Rand
	every time.Duration
	stop  chan struct{}
	done  chan struct{}

	mu   sync.Mutex
	read []map[string]kvState // the key space at revisions 0..len-1 (0: nil), read before compacting them
	list []compaction
}

// startCompactor starts compacting every ~every (nothing when every is 0).
func startCompactor(c *cluster, rec *recorder, every time.Duration, seed uint64) *compactor {
	cp := &compactor{c: c, rec: rec, rnd: rand.New(rand.NewPCG(seed, 0xc0c0)), every: every,
		stop: make(chan struct{}), done: make(chan struct{})}
	if every <= 0 {
		close(cp.done)
		return cp
	}
	go cp.run()
	return cp
}

func (cp *compactor) run() {
	defer close(cp.done)
	cl := cp.c.client(cp.c.members[0])
	defer cl.Close()
	read := []map[string]kvState{nil}
	var last int64
	for {
		select {
		case <-cp.stop:
			return
		case <-time.After(cp.every/2 + time.Duration(cp.rnd.Int64N(int64(cp.every)))):
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := cl.Get(ctx, "k", clientv3.WithCountOnly())
		if err != nil {
			cancel()
			continue
		}
		target := r.Header.Revision - int64(5+cp.rnd.IntN(40))
		if target <= last || target < 2 {
			cancel()
			continue
		}
		states, err := readStates(ctx, cl, int64(len(read)), target)
		if err != nil {
			cancel()
			continue
		}
		read = append(read, states...)
		cp.mu.Lock()
		cp.read = read
		cp.mu.Unlock()
		o := compaction{Rev: target, Call: cp.rec.now()}
		_, err = cl.Compact(ctx, target)
		o.Return = cp.rec.now()
		cancel()
		if err != nil {
			o.Err = err.Error()
		}
		cp.mu.Lock()
		cp.list = append(cp.list, o)
		cp.mu.Unlock()
		last = target // even after an error: it may have been applied
	}
}

// finish stops the compactor and returns what it read and sent.
func (cp *compactor) finish() ([]map[string]kvState, []compaction) {
	select {
	case <-cp.stop:
	default:
		close(cp.stop)
	}
	<-cp.done
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.read, cp.list
}

// events are the compactions as timeline events.
func (cp *compactor) events() []Event {
	_, list := cp.finish()
	var out []Event
	for _, o := range list {
		what := fmt.Sprintf("compact at revision %d", o.Rev)
		if o.Err != "" {
			what += " (unknown outcome: " + o.Err + ")"
		}
		out = append(out, Event{At: o.Call, What: what})
	}
	return out
}
