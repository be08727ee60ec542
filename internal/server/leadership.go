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
// a tick for tick clocks out of phase (soleLeaderWindow keeps one more tick
// of margin). Whatever happened since, an answer made within that window
// is the only leader's:
//   - a renewal never promises a TTL that outlasts the lease on a
//     successor (which, besides, extends every lease by an election
//     timeout when it takes over);
//   - a TimeToLive misses nothing committed elsewhere.
// A confirmation is reused for half an election timeout (renewals come in
// thousands a second), leaving at least a tenth of one to answer in: the
// election timeout is at least five ticks (--election-timeout).

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

// soleLeaderWindow is how long after a confirmation's start this member is
// certainly the only leader, with a tick of margin.
func (s *Server) soleLeaderWindow() time.Duration {
	return s.cfg.ElectionTimeout() - 2*s.cfg.TickInterval()
}

// confirmationReuse is how long a confirmation is reused for.
func (s *Server) confirmationReuse() time.Duration { return s.cfg.ElectionTimeout() / 2 }

// confirmRecentLeadership returns a confirmation of this member's
// leadership in its current term whose round started less than maxAge ago,
// running a new round (ensureLeadership) when there is none; ok is false
// when this member does not lead or the round fails.
func (s *Server) confirmRecentLeadership(ctx context.Context, maxAge time.Duration) (term uint64, start time.Time, ok bool) {
	if !s.node.IsLeader() {
		return 0, time.Time{}, false
	}
	if term, start, ok = s.leadership.recent(time.Now(), maxAge); ok && term == s.node.Term() {
		return term, start, true
	}
	return s.ensureLeadership(ctx)
}
