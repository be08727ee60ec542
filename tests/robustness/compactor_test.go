package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
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
	atDel bool // always at the latest delete, when there is one
	stop  chan struct{}
	done  chan struct{}

	mu      sync.Mutex
	read    []map[string]kvState // the key space at revisions 0..len-1 (0: nil), read before compacting them
	list    []compaction
	anoms   []anomaly // watches from a compact revision that missed its events
	checked int       // watches from a compact revision that answered
}

// startCompactor starts compacting every ~every (nothing when every is 0).
func startCompactor(c *cluster, rec *recorder, every time.Duration, atDeletes bool, seed uint64) *compactor {
	cp := &compactor{c: c, rec: rec, rnd: rand.New(rand.NewPCG(seed, 0xc0c0)), every: every, atDel: atDeletes,
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
		upTo := r.Header.Revision - 5
		if upTo <= last || upTo < 2 {
			cancel()
			continue
		}
		if upTo >= int64(len(read)) {
			states, err := readStates(ctx, cl, int64(len(read)), upTo)
			if err != nil {
				cancel()
				continue
			}
			read = append(read, states...)
		}
		// Up to 40 revisions back; or, one time in two, the latest
		// delete: a tombstone at the compact revision is the edge case
		// a watch from that revision must still show.
		target := max(last+1, upTo-cp.rnd.Int64N(40))
		if cp.rnd.IntN(2) == 0 || cp.atDel {
			for rv := upTo; rv > last && rv > 1; rv-- {
				if len(changesAt(read, rv)) > 0 && hasDelete(read[rv-1], read[rv]) {
					target = rv
					break
				}
			}
		}
		cp.mu.Lock()
		cp.read = read
		cp.mu.Unlock()
		o := compaction{Rev: target, Call: cp.rec.now()}
		_, err = cl.Compact(ctx, target)
		o.Return = cp.rec.now()
		if err != nil {
			o.Err = err.Error()
		} else {
			cp.watchFrom(ctx, cl, target, changesAt(read, target))
		}
		cancel()
		cp.mu.Lock()
		cp.list = append(cp.list, o)
		cp.mu.Unlock()
		last = target // even after an error: it may have been applied
	}
}

// watchFrom opens a watch on every key from the compact revision rev and
// checks that its first events are exactly rev's changes: a compaction
// keeps what a watch from its own revision needs (a tombstone at rev
// included). A watch that errs or says nothing within its deadline is not
// counted either way.
func (cp *compactor) watchFrom(ctx context.Context, cl *clientv3.Client, rev int64, want []string) {
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for resp := range cl.Watch(wctx, "", clientv3.WithPrefix(), clientv3.WithRev(rev)) {
		if resp.Canceled || resp.Err() != nil {
			return
		}
		if len(resp.Events) == 0 {
			continue
		}
		var got []string
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision == rev {
				got = append(got, fmt.Sprintf("%s %s", ev.Type, ev.Kv.Key))
			}
		}
		slices.Sort(got)
		cp.mu.Lock()
		cp.checked++
		if !slices.Equal(got, want) {
			cp.anoms = append(cp.anoms, anomaly{anomWatchCompactEdge, fmt.Sprintf("a watch from compact revision %d delivered %v there, the store changed %v", rev, got, want)})
		}
		cp.mu.Unlock()
		return
	}
}

// changesAt are revision rev's changes in read, as "PUT key" / "DELETE key",
// sorted.
func changesAt(read []map[string]kvState, rev int64) []string {
	var out []string
	prev, cur := read[rev-1], read[rev]
	for k, kv := range cur {
		if kv.Mod == rev {
			out = append(out, "PUT "+k)
		}
	}
	for k := range prev {
		if _, ok := cur[k]; !ok {
			out = append(out, "DELETE "+k)
		}
	}
	slices.Sort(out)
	return out
}

// hasDelete says whether a key of prev is gone in cur.
func hasDelete(prev, cur map[string]kvState) bool {
	for k := range prev {
		if _, ok := cur[k]; !ok {
			return true
		}
	}
	return false
}

// anomalies are the compactor's findings, and how many watches from a
// compact revision it checked.
func (cp *compactor) anomalies() ([]anomaly, int) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.anoms, cp.checked
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
