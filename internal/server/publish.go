package server

import (
	"context"
	"errors"
	"slices"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
)

// publish proposes this member's attributes (name, client URLs) until they
// are applied, then marks the server ready, like etcd's publishV3.
//
// A member far behind may install a leader's snapshot that already holds
// its publish entry instead of applying the entry; the proposal's waiter
// would then only time out (etcd waits the request timeout and proposes
// again). Here an install ends the attempt at once, and the member counts
// as published when the installed member set carries its attributes.
func (s *Server) publish() {
	for {
		// A fresh request per attempt: an earlier attempt's entry may still
		// be applied, and the applier may be reading its request.
		req := &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
			Member_ID:        s.ID(),
			MemberAttributes: &membershippb.Attributes{Name: s.cfg.Name, ClientUrls: s.cfg.ClientURLs},
		}}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout())
		installed := s.installs.wait()
		go func() {
			select {
			case <-installed:
				cancel()
			case <-ctx.Done():
			}
		}()
		_, err := s.propose(ctx, req)
		cancel()
		if err == nil || (isClosed(installed) && s.attributesPublished()) {
			s.lg.Info("published local member to cluster through raft",
				zap.String("local-member-id", membership.FormatID(s.ID())),
				zap.String("cluster-id", membership.FormatID(s.ClusterID())))
			close(s.readyc)
			s.decideClusterVersion()
			return
		}
		if errors.Is(err, ErrStopped) {
			return
		}
		if !isClosed(installed) {
			s.lg.Warn("failed to publish local member to cluster through raft", zap.Error(err))
		}
		select {
		case <-s.stopping:
			return
		default:
		}
	}
}

// attributesPublished reports whether the member set holds this member with
// the name and client URLs it publishes.
func (s *Server) attributesPublished() bool {
	m := s.cl.Member(s.ID())
	return m != nil && m.Name == s.cfg.Name && slices.Equal(m.ClientURLs, s.cfg.ClientURLs)
}

// broadcast wakes every waiter each time it fires. The zero value is ready
// to use.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed at the next fire.
func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// fire closes the channel waiters hold and starts a new one.
func (b *broadcast) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
	}
	b.ch = make(chan struct{})
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
