package rafthttp

import (
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.uber.org/zap"
)

// failure says which channel failed and how, for the "peer became
// inactive" log line: "failed to <action> <peer> on <source> (<reason>)".
type failure struct {
	source string // "stream Message", "stream MsgApp v2", "pipeline"
	action string // "dial", "read", "write", "heartbeat"
}

// pipelineSource is the channel name of the pipeline in log lines.
const pipelineSource = "pipeline"

// peerStatus is the active/inactive state of one remote member, shared by
// its streams and pipeline (spec 6.2). Safe for concurrent use.
type peerStatus struct {
	lg *zap.Logger
	id types.ID

	mu     sync.Mutex // protects active and since
	active bool
	since  time.Time // zero while inactive
}

func newPeerStatus(lg *zap.Logger, id uint64) *peerStatus {
	return &peerStatus{lg: lg, id: types.ID(id)}
}

// activate marks the peer active; on the transition it sets since and logs.
func (s *peerStatus) activate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active {
		return
	}
	s.active = true
	s.since = time.Now()
	s.lg.Info("peer became active", zap.String("peer-id", s.id.String()))
}

// deactivate marks the peer inactive after f failed with reason; on the
// transition it clears since and warns.
func (s *peerStatus) deactivate(f failure, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := fmt.Errorf("failed to %s %s on %s (%s)", f.action, s.id, f.source, reason)
	if !s.active {
		s.lg.Debug("peer deactivated again", zap.String("peer-id", s.id.String()), zap.Error(err))
		return
	}
	s.active = false
	s.since = time.Time{}
	s.lg.Warn("peer became inactive (message send to peer failed)", zap.String("peer-id", s.id.String()), zap.Error(err))
}

func (s *peerStatus) isActive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// activeSince is when the peer last became active, zero while inactive.
func (s *peerStatus) activeSince() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.since
}
