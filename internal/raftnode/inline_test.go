package raftnode

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// inlineLog records the order in which batches are applied, inline or from
// the Apply channel, and breaches of the inline contract.
type inlineLog struct {
	mu         sync.Mutex
	applied    []uint64 // entry indexes in apply order
	inline     int      // batches applied inline
	declined   int      // inline offers declined
	channel    int      // batches applied from the channel
	inFlight   int      // channel batches received and not yet reported done
	calls      int
	violations []string
}

func (l *inlineLog) record(ents []raftpb.Entry) {
	for _, e := range ents {
		if n := len(l.applied); n > 0 && e.Index != l.applied[n-1]+1 {
			l.violations = append(l.violations, fmt.Sprintf("entry %d applied after %d", e.Index, l.applied[n-1]))
		}
		l.applied = append(l.applied, e.Index)
	}
}

// TestInlineApplyKeepsLogOrder: with an inline applier that sometimes
// declines and a channel applier that is sometimes slow to report done,
// every committed entry is applied exactly once, in log order; the inline
// applier is offered only batches whose Ready is persisted and appended
// nothing, and never while a channel batch is outstanding.
func TestInlineApplyKeepsLogOrder(t *testing.T) {
	p := newFakePersister()
	l := &inlineLog{}
	h := startWith(t, p, func(c *Config) {
		c.ApplyInline = func(ap Apply) (bool, error) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.calls++
			select {
			case <-ap.Persisted:
			default:
				l.violations = append(l.violations, "inline batch offered before its Ready was persisted")
			}
			if ap.NeedsPersist() {
				l.violations = append(l.violations, "inline batch needs persisting")
			}
			for _, e := range ap.Entries {
				if !p.holds(e) {
					l.violations = append(l.violations, fmt.Sprintf("inline entry %d not saved", e.Index))
				}
			}
			if l.inFlight > 0 {
				l.violations = append(l.violations, "inline batch offered while a channel batch is being applied")
			}
			if l.calls%3 == 0 {
				l.declined++
				return false, nil
			}
			l.inline++
			l.record(ap.Entries)
			return true, nil
		}
	})
	// The channel applier: applies in order, sometimes reports late.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		i := 0
		for {
			select {
			case ap, ok := <-h.n.Apply():
				if !ok {
					return
				}
				<-ap.Persisted
				l.mu.Lock()
				l.inFlight++
				l.channel++
				l.record(ap.Entries)
				l.mu.Unlock()
				if i++; i%4 == 0 {
					time.Sleep(time.Millisecond) // a slow applier: the loop must not go inline meanwhile
				}
				l.mu.Lock()
				l.inFlight--
				l.mu.Unlock()
				h.n.ApplyDone()
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	deadline := time.Now().Add(wait)
	for h.n.Leader() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(time.Millisecond)
	}
	appliedCount := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.applied)
	}
	// One proposal at a time, each waited for: its commit arrives in a
	// Ready of its own, which appends nothing (the inline case).
	const sequential, n = 30, 300
	for i := range sequential {
		before := appliedCount()
		h.n.Propose(nil, uint64(i), fmt.Appendf(nil, "p%d", i))
		for appliedCount() == before {
			if time.Now().After(deadline) {
				t.Fatalf("proposal %d never applied", i)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	// Then bursts, with the channel applier sometimes slow.
	for i := sequential; i < n; i++ {
		h.n.Propose(nil, uint64(i), fmt.Appendf(nil, "p%d", i))
		if i%10 < 5 {
			if err := h.barrier(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for {
		l.mu.Lock()
		got := len(l.applied)
		l.mu.Unlock()
		if got >= n+1 { // the proposals and the leader's empty entry, at least
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("applied %d entries of at least %d", got, n+1)
		}
		time.Sleep(time.Millisecond)
	}
	if err := h.barrier(); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.violations) > 0 {
		t.Fatal(l.violations)
	}
	if l.applied[0] != 1 {
		t.Fatalf("first applied entry %d, want 1", l.applied[0])
	}
	if l.inline == 0 || l.declined == 0 || l.channel == 0 {
		t.Fatalf("inline %d, declined %d, channel %d: every path must be exercised", l.inline, l.declined, l.channel)
	}
	if errs := h.fatalErrs(); len(errs) > 0 {
		t.Fatal(errs)
	}
	t.Logf("inline %d, declined %d, channel %d batches", l.inline, l.declined, l.channel)
}
