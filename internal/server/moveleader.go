package server

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
)

// Leadership transfer errors, with etcd's texts.
var (
	// ErrBadLeaderTransferee refuses a target that is not a voting member.
	ErrBadLeaderTransferee = errors.New("etcdserver: bad leader transferee")
	// ErrTimeoutLeaderTransfer is returned when the target did not take
	// over within the request timeout.
	ErrTimeoutLeaderTransfer = errors.New("etcdserver: request timed out, leader transfer took too long")
)

// MoveLeader hands leadership to target and waits until it leads (etcd's
// Maintenance.MoveLeader on the leader). The wait is bounded by ctx and the
// request timeout.
func (s *Server) MoveLeader(ctx context.Context, target uint64) error {
	m := s.cl.Member(target)
	if m == nil || m.IsLearner {
		return ErrBadLeaderTransferee
	}
	lead := s.Leader()
	if lead == target {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout())
	defer cancel()
	start := time.Now()
	s.lg.Info("leadership transfer starting",
		zap.String("local-member-id", membership.FormatID(s.ID())),
		zap.String("current-leader-member-id", membership.FormatID(lead)),
		zap.String("transferee-member-id", membership.FormatID(target)))
	if err := s.node.TransferLeadership(target); err != nil {
		return err
	}
	tick := time.NewTicker(s.cfg.TickInterval())
	defer tick.Stop()
	for s.Leader() != target {
		select {
		case <-ctx.Done():
			return ErrTimeoutLeaderTransfer
		case <-s.stopping:
			return ErrStopped
		case <-tick.C:
		}
	}
	s.lg.Info("leadership transfer finished",
		zap.String("old-leader-member-id", membership.FormatID(lead)),
		zap.String("new-leader-member-id", membership.FormatID(target)),
		zap.Duration("took", time.Since(start)))
	return nil
}

// ErrNoTransferee is returned when a leader stopping gracefully finds no
// connected voter to hand leadership to.
var ErrNoTransferee = errors.New("etcdserver: unhealthy cluster")

// TransferLeadershipOnShutdown hands leadership to the voter this member
// has been connected to longest, if this member leads a cluster with other
// voters, and waits (up to the request timeout) until that voter leads. A
// member stopping on SIGTERM or SIGINT calls it before it stops, so clients
// see a leader change of one round trip instead of an election timeout.
// Failing to hand over is not an error of the stop: it is logged.
func (s *Server) TransferLeadershipOnShutdown() {
	local := membership.FormatID(s.ID())
	if !s.IsLeader() {
		s.lg.Info("skipped leadership transfer; local server is not leader",
			zap.String("local-member-id", local),
			zap.String("current-leader-member-id", membership.FormatID(s.Leader())))
		return
	}
	target, ok := s.longestConnectedVoter()
	if !ok {
		if s.otherVoters() == 0 {
			s.lg.Info("skipped leadership transfer for single voting member cluster",
				zap.String("local-member-id", local))
			return
		}
		s.lg.Warn("leadership transfer failed", zap.String("local-member-id", local), zap.Error(ErrNoTransferee))
		return
	}
	if err := s.MoveLeader(context.Background(), target); err != nil {
		s.lg.Warn("leadership transfer failed", zap.String("local-member-id", local), zap.Error(err))
	}
}

// otherVoters counts the voting members other than this one.
func (s *Server) otherVoters() int {
	n := 0
	for _, m := range s.cl.Members() {
		if m.ID != s.ID() && !m.IsLearner {
			n++
		}
	}
	return n
}
