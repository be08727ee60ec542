package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/raftnode"
)

// peerTransport is what the server needs of the peer transport
// (internal/rafthttp): it carries raft messages to the other members and
// hands theirs to Process.
type peerTransport interface {
	raftnode.Transport
	AddPeer(id uint64, urls []string)
	RemovePeer(id uint64)
	UpdatePeer(id uint64, urls []string)
	// ActiveSince is when the peer's connection became active (zero: not
	// active).
	ActiveSince(id uint64) time.Time
	// PeerRefused reports whether the peer's URL refuses connections (its
	// process is gone).
	PeerRefused(id uint64) bool
	Handler() http.Handler
	Stop()
}

// Errors Process returns to the transport for messages raft must not see.
var (
	// ErrRemovedMember refuses a message from a removed member.
	ErrRemovedMember = errors.New("cannot process message from removed member")
	// ErrToMismatch refuses a message addressed to another member.
	ErrToMismatch = errors.New("cannot process message to mismatch member")
)

// Process hands a message from a peer to raft (the transport's Raft).
func (s *Server) Process(ctx context.Context, m raftpb.Message) error {
	if s.cl.IsRemoved(m.From) {
		return fmt.Errorf("%w %s", ErrRemovedMember, membership.FormatID(m.From))
	}
	if m.To != s.ID() {
		return fmt.Errorf("%w: message to %s, this member is %s", ErrToMismatch, membership.FormatID(m.To), membership.FormatID(s.ID()))
	}
	s.v2stats.received(m)
	return s.node.Step(ctx, m)
}

// IsIDRemoved reports whether id was removed from the cluster.
func (s *Server) IsIDRemoved(id uint64) bool { return s.cl.IsRemoved(id) }

// ReportUnreachable tells raft a message to id was lost.
func (s *Server) ReportUnreachable(id uint64) {
	s.v2stats.peer(id).fail.Add(1)
	s.node.ReportUnreachable(id)
}

// ReportSnapshot tells raft how sending a snapshot to id ended.
func (s *Server) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	s.node.ReportSnapshot(id, status)
}

// peerSet keeps the transport's peers equal to the member set: members are
// known from the initial cluster at bootstrap, the snapshot at restart, and
// every conf change applied (replayed ones included).
type peerSet struct {
	mu    sync.Mutex
	tr    peerTransport
	local uint64
	urls  map[uint64]string // id → sorted, comma-joined peer URLs
}

func newPeerSet(tr peerTransport, local uint64) *peerSet {
	return &peerSet{tr: tr, local: local, urls: map[uint64]string{}}
}

// add records members known at start (the initial cluster, or the
// snapshot's member set) without removing anyone.
func (p *peerSet) add(members []*membership.Member) {
	for _, m := range members {
		p.changed(m.ID, m)
	}
}

// changed brings the transport in line with member id after a conf change:
// m is the member now, nil once it is removed.
func (p *peerSet) changed(id uint64, m *membership.Member) {
	if p == nil || p.tr == nil || id == p.local {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old, known := p.urls[id]
	if m == nil {
		if known {
			p.tr.RemovePeer(id)
			delete(p.urls, id)
		}
		return
	}
	urls := slices.Clone(m.PeerURLs)
	slices.Sort(urls)
	joined := strings.Join(urls, ",")
	switch {
	case !known:
		p.tr.AddPeer(id, urls)
	case old != joined:
		p.tr.UpdatePeer(id, urls)
	}
	p.urls[id] = joined
}

// leaderGoneHook is raftnode.Config.LeaderGone: the peer transport knows
// when a member's peer URL refuses connections. Without PreVote an early
// campaign that cannot win would still raise the term, so none is made.
func (s *Server) leaderGoneHook(preVote bool) func(lead uint64) bool {
	if !preVote {
		return nil
	}
	return func(lead uint64) bool { return s.tr != nil && s.tr.PeerRefused(lead) }
}
