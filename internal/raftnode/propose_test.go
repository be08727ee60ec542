package raftnode

import (
	"bytes"
	"testing"
)

func TestProposalQueueBatchesInOrder(t *testing.T) {
	q := newProposalQueue()
	for i := range 5 {
		q.add(proposal{data: []byte{byte(i)}})
	}
	select {
	case <-q.wake:
	default:
		t.Fatal("no wake-up after the first add")
	}
	ents := q.take()
	if len(ents) != 5 {
		t.Fatalf("took %d entries, want 5", len(ents))
	}
	for i, e := range ents {
		if !bytes.Equal(e.data, []byte{byte(i)}) {
			t.Fatalf("entry %d = %v, want [%d]", i, e.data, i)
		}
	}
	if ents := q.take(); len(ents) != 0 {
		t.Fatalf("second take got %d entries, want 0", len(ents))
	}
	// The slice handed out is never written again.
	q.add(proposal{data: []byte{9}})
	if ents[0].data[0] != 0 {
		t.Fatal("a later add overwrote a taken batch")
	}
}

func TestProposalQueueSplitsLargeBatches(t *testing.T) {
	q := newProposalQueue()
	big := make([]byte, maxProposalBatchBytes/2+1)
	for range 3 {
		q.add(proposal{data: big})
	}
	<-q.wake
	for i := range 3 {
		if ents := q.take(); len(ents) != 1 {
			t.Fatalf("batch %d has %d entries, want 1 (any two are over the limit)", i, len(ents))
		}
		select {
		case <-q.wake:
			if i == 2 {
				t.Fatal("wake-up after the queue was drained")
			}
		default:
			if i < 2 {
				t.Fatal("the rest of a split batch has no wake-up")
			}
		}
	}
	// One entry over the limit still goes out alone.
	q.add(proposal{data: make([]byte, maxProposalBatchBytes+1)})
	if ents := q.take(); len(ents) != 1 {
		t.Fatalf("an oversized entry came out as %d entries", len(ents))
	}
}
