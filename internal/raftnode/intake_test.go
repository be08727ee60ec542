package raftnode

import (
	"fmt"
	"testing"
	"time"
)

// TestRequestsServedUnderSteadyProposals: while proposals keep arriving
// faster than the disk takes them (so raft has a Ready after every Ready),
// raft keeps ticking and requests to the loop still run within a Ready or
// two, not at the next lull in writes.
func TestRequestsServedUnderSteadyProposals(t *testing.T) {
	p := newFakePersister()
	p.delay = 2 * time.Millisecond
	h := start(t, p)
	h.awaitLeader(t)
	go func() {
		for range h.n.Apply() {
		}
	}()
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			for j := range 10 {
				h.n.Propose(nil, uint64(i*10+j), fmt.Appendf(nil, "p%d", i*10+j))
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	defer func() { close(stop); <-stopped }()
	// Let the load settle: saves keep coming.
	deadline := time.Now().Add(wait)
	for {
		p.mu.Lock()
		n := p.saves
		p.mu.Unlock()
		if n > 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the loop is not saving")
		}
		time.Sleep(time.Millisecond)
	}
	// Ticks keep coming (a leader's heartbeats and check-quorum, a
	// follower's election timer depend on them), and so do requests to the
	// loop (a ReadIndex, a status, a conf change's apply).
	// Watched for 1.5 s, raft's last tick is never more than 500 ms old
	// (tick interval 1 ms, a Ready about 2 ms; without ticks between
	// Readys, gaps of seconds were seen).
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if age := time.Since(h.n.LastTick()); age > 500*time.Millisecond {
			t.Fatalf("raft last ticked %v ago while proposals kept coming", age)
		}
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- h.barrier() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("request ran after %v under steady proposals", time.Since(start))
	case <-time.After(3 * time.Second):
		t.Fatal("a request to the loop waited more than 3 s while proposals kept coming (a Ready takes ~2 ms)")
	}
}
