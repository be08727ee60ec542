package server

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Confirming leadership for the leader's lease decisions.
//
// A leader paused (SIGSTOP, a long stall) or cut off keeps believing it
// leads, and ticks as soon as it runs again, until a message of its
// successor reaches it: raft's own view of its role says nothing about
// whether a successor exists. A ReadIndex round does: its heartbeats leave
// after the round starts, a quorum answers them, and none of that quorum
// grants a vote or campaigns for an election timeout after hearing from
// the leader (CheckQuorum; raftnode's early campaign waits as long). So no
// successor exists before the round's start plus an election timeout, less
// a tick for tick clocks out of phase; and a successor extends every lease
// by an election timeout when it takes over. A renewal made within an
// election timeout of a confirmation's start therefore never promises a
// TTL that outlasts the lease on a successor, whenever the confirmation
// was made and whatever happened since.

// leadershipConfirmation is the last successful confirmation: the term it
// confirmed and when its round started. Safe for concurrent use.
type leadershipConfirmation struct {
	mu    sync.Mutex
	term  uint64
	start time.Time
}

// recent returns the last confirmation if its round started less than
// maxAge before now.
func (c *leadershipConfirmation) recent(now time.Time, maxAge time.Duration) (term uint64, start time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.term == 0 || now.Sub(c.start) >= maxAge {
		return 0, time.Time{}, false
	}
	return c.term, c.start, true
}

// record keeps a confirmation unless a later one is already kept.
func (c *leadershipConfirmation) record(term uint64, start time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if start.After(c.start) {
		c.term, c.start = term, start
	}
}

// ensureLeadership confirms that this member still leads, by a ReadIndex
// round (etcd's ensureLeadership), and returns the term it leads in and
// when the round started; it keeps the confirmation for renewals
// (renewAsLeader).
func (s *Server) ensureLeadership(ctx context.Context) (term uint64, start time.Time, ok bool) {
	start = time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout())
	defer cancel()
	if err := s.LinearizableReadNotify(ctx); err != nil {
		s.lg.Warn("Failed to check current member's leadership", zap.Error(err))
		return 0, start, false
	}
	term = s.node.Term()
	if lead := s.Leader(); lead != s.ID() || !s.node.IsLeader() {
		s.lg.Warn("Current member isn't a leader", zap.Uint64("local-member-id", s.ID()), zap.Uint64("new-lead", lead))
		return 0, start, false
	}
	s.leadership.record(term, start)
	return term, start, true
}
