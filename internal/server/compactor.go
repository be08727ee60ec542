package server

import (
	"context"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/compactor"
)

// The server is the auto compactor's Source: Rev (v3.go), Compact through
// raft (v3.go) and IsLeader.
var _ compactor.Source = (*Server)(nil)

// IsLeader reports whether this member is the raft leader.
func (s *Server) IsLeader() bool { return s.node.IsLeader() }

// startCompactor runs etcd's automatic compaction when
// cfg.AutoCompactionRetention is not 0, in a background goroutine that ends
// when the server stops (Stop waits for it). Only the leader compacts.
func (s *Server) startCompactor() {
	if s.cfg.AutoCompactionRetention == 0 {
		return
	}
	r, err := compactor.New(compactor.Options{
		Logger:    s.lg,
		Mode:      s.cfg.AutoCompactionMode,
		Retention: s.cfg.AutoCompactionRetention,
	}, s)
	if err != nil {
		s.lg.Warn("auto compaction disabled",
			zap.String("auto-compaction-mode", s.cfg.AutoCompactionMode),
			zap.Duration("auto-compaction-retention", s.cfg.AutoCompactionRetention),
			zap.Error(err))
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer cancel()
		go func() {
			select {
			case <-s.stopping:
				cancel()
			case <-ctx.Done():
			}
		}()
		r.Run(ctx)
	}()
}
