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
