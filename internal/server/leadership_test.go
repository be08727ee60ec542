package server

import (
	"testing"
	"time"
)

func TestLeadershipConfirmationReuse(t *testing.T) {
	var c leadershipConfirmation
	t0 := time.Unix(1000, 0)
	if _, _, ok := c.recent(t0, time.Second); ok {
		t.Fatal("an empty confirmation is reused")
	}
	c.record(5, t0)
	c.record(4, t0.Add(-time.Second)) // an older round finishing late does not replace it
	for _, tc := range []struct {
		at time.Duration
		ok bool
	}{{0, true}, {499 * time.Millisecond, true}, {500 * time.Millisecond, false}, {time.Hour, false}} {
		term, start, ok := c.recent(t0.Add(tc.at), 500*time.Millisecond)
		if ok != tc.ok || (ok && (term != 5 || !start.Equal(t0))) {
			t.Errorf("%v after the round's start: got term %d start %v ok %v, want ok %v (term 5)", tc.at, term, start, ok, tc.ok)
		}
	}
}
