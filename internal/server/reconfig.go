package server

// Runtime reconfiguration: adding, removing, updating and promoting
// members. Every change goes through raft as a ConfChange v1 whose context
// is etcd's member JSON (peer protocol §8.3), so etcd members in a mixed
// cluster apply cairn's changes and the reverse. The apply loop validates
// and applies them (apply.Applier.ConfChange) and calls confChangeApplied,
// which wakes the proposer with the member set as of that entry.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/rafthttp"
	"github.com/cairnkv/cairn/internal/raftnode"
)

// Reconfiguration errors, with etcd's texts. The API layer maps them (and
// membership's validation errors) to etcd's gRPC errors.
var (
	// ErrNotEnoughStartedMembers refuses a change after which fewer than a
	// quorum of voting members would have started (strict check).
	ErrNotEnoughStartedMembers = errors.New("etcdserver: re-configuration failed due to not enough started members")
	// ErrUnhealthy refuses a change while this member has not been
	// connected to enough voting members for healthInterval (strict check).
	ErrUnhealthy = errors.New("etcdserver: unhealthy cluster")
	// ErrLearnerNotReady refuses to promote a learner whose log is behind
	// the leader's by more than 10%.
	ErrLearnerNotReady = errors.New("etcdserver: can only promote a learner member which is in sync with leader")
	// ErrBadPeerURLs refuses peer URLs that are not http(s)://host:port or
	// unix(s) URLs without a path.
	ErrBadPeerURLs = errors.New("etcdserver: given member URLs are invalid")
	// ErrMemberRemoved is the error a member stops with once it knows it
	// was removed from the cluster: it applied its own removal, or a peer
	// refused it as removed (the transport reports the same sentinel).
	ErrMemberRemoved = rafthttp.ErrMemberRemoved
)

// errNotLeader says only the leader can decide (learner readiness); the
// caller forwards the request to the leader.
var errNotLeader = errors.New("etcdserver: not leader")

// removedStopDelay is how long a member that applied its own removal keeps
// running before it stops (etcd's value), so the entry's commit reaches
// its peers and the client that asked gets its answer.
const removedStopDelay = time.Second

// reconfigState is the server's reconfiguration bookkeeping.
type reconfigState struct {
	removedOnce sync.Once
	// selfRemoval is the ConfChange ID of this member's own removal while
	// a client waits for it (0: none).
	selfRemoval atomic.Uint64
}

// AddMember adds a member with the given peer URLs (a learner when learner
// is set) and returns it with the member set after the change. Its ID is
// derived from the URLs and the current time with an empty token, as etcd
// derives the IDs of members added at runtime; it has no name until it
// starts and publishes one.
func (s *Server) AddMember(ctx context.Context, peerURLs []string, learner bool) (*membership.Member, []*membership.Member, error) {
	urls, err := types.NewURLs(peerURLs)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadPeerURLs, err)
	}
	now := time.Now()
	m := membership.NewMember("", urls.StringSlice(), "", &now)
	m.IsLearner = learner
	if s.cfg.StrictReconfigCheck {
		if r := checkAdd(s.voterStates(time.Now()), learner); r != nil {
			s.logRefusal("add", r, zap.String("requested-member-add", membership.FormatID(m.ID)),
				zap.Strings("peer-urls", m.PeerURLs), zap.Bool("is-learner", learner))
			return nil, nil, r.err
		}
	}
	b, err := membership.MarshalContext(m, false)
	if err != nil {
		return nil, nil, err
	}
	cc := raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: m.ID, Context: b}
	if learner {
		cc.Type = raftpb.ConfChangeAddLearnerNode
	}
	ms, err := s.configure(ctx, cc)
	if err != nil {
		return nil, nil, err
	}
	return m, ms, nil
}

// RemoveMember removes member id for good (its ID can never return) and
// returns the member set after the change. When id leads, leadership is
// handed over first (handOverBeforeRemoval), so the cluster does not wait
// an election timeout for a new leader.
func (s *Server) RemoveMember(ctx context.Context, id uint64) ([]*membership.Member, error) {
	if s.cfg.StrictReconfigCheck {
		target := s.cl.Member(id)
		if r := checkRemove(s.voterStates(time.Now()), id, target != nil && target.IsLearner); r != nil {
			s.logRefusal("remove", r, zap.String("requested-member-remove", membership.FormatID(id)))
			return nil, r.err
		}
	}
	if id != raft.None && id == s.Leader() {
		s.handOverBeforeRemoval(ctx, id)
	}
	return s.configure(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: id})
}

// handOverBeforeRemoval moves leadership away from lead, which is about to
// be removed, so the cluster keeps a leader throughout: a removed leader's
// peers stop listening to it once they apply its removal, and would wait an
// election timeout for a new one. The leader hands over to the voter it has
// been connected to longest; a follower asks the leader (through raft,
// which forwards the request) to hand over to the follower itself. On
// failure the removal goes on regardless.
func (s *Server) handOverBeforeRemoval(ctx context.Context, lead uint64) {
	to, ok := s.ID(), true
	if lead == s.ID() {
		to, ok = s.longestConnectedVoter()
	} else if m := s.cl.Member(s.ID()); m == nil || m.IsLearner {
		ok = false
	}
	if !ok {
		return
	}
	s.lg.Info("handing over leadership before removing the leader",
		zap.String("local-member-id", membership.FormatID(s.ID())),
		zap.String("leader-member-id", membership.FormatID(lead)),
		zap.String("transferee-member-id", membership.FormatID(to)))
	var err error
	if lead == s.ID() {
		err = s.MoveLeader(ctx, to)
	} else {
		err = s.awaitLeaderChange(ctx, lead, to)
	}
	if err != nil {
		s.lg.Warn("leadership hand-over before removal failed; removing the leader regardless", zap.Error(err))
	}
}

// awaitLeaderChange asks the leader lead, through raft, to hand leadership
// to to (this member), and waits until another member leads, for at most
// the request timeout.
func (s *Server) awaitLeaderChange(ctx context.Context, lead, to uint64) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout())
	defer cancel()
	if err := s.node.TransferLeadership(to); err != nil {
		return err
	}
	tick := time.NewTicker(s.cfg.TickInterval())
	defer tick.Stop()
	for l := s.Leader(); l == lead || l == raft.None; l = s.Leader() {
		select {
		case <-ctx.Done():
			return ErrTimeoutLeaderTransfer
		case <-s.stopping:
			return ErrStopped
		case <-tick.C:
		}
	}
	return nil
}

// UpdateMember replaces member id's peer URLs (only those: its name and
// client URLs are what it publishes itself) and returns the member set
// after the change.
func (s *Server) UpdateMember(ctx context.Context, id uint64, peerURLs []string) ([]*membership.Member, error) {
	// etcd takes the URLs as given; cairn refuses ones a peer could not
	// dial (etcd members panic on them when building the transport).
	urls, err := types.NewURLs(peerURLs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPeerURLs, err)
	}
	b, err := membership.MarshalContext(&membership.Member{ID: id, RaftAttributes: membership.RaftAttributes{PeerURLs: urls.StringSlice()}}, false)
	if err != nil {
		return nil, err
	}
	return s.configure(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeUpdateNode, NodeID: id, Context: b})
}

// configure proposes cc through raft and waits until it is applied,
// returning the member set as of that entry or the validation error that
// made it a no-op. The wait is bounded by ctx and the request timeout.
func (s *Server) configure(ctx context.Context, cc raftpb.ConfChange) ([]*membership.Member, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout())
	defer cancel()
	start := time.Now()
	cc.ID = s.ids.Next()
	ch := s.w.Register(cc.ID, nil)
	if cc.Type == raftpb.ConfChangeRemoveNode && cc.NodeID == s.ID() {
		s.rc.selfRemoval.Store(cc.ID)
		defer s.rc.selfRemoval.CompareAndSwap(cc.ID, 0)
	}
	if err := s.proposeConfChange(ctx, cc, start); err != nil {
		s.w.Cancel(cc.ID)
		return nil, err
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		s.lg.Info("applied a configuration change through raft",
			zap.String("local-member-id", membership.FormatID(s.ID())),
			zap.String("raft-conf-change", cc.Type.String()),
			zap.String("raft-conf-change-node-id", membership.FormatID(cc.NodeID)))
		ms, _ := r.resp.([]*membership.Member)
		return ms, nil
	case <-ctx.Done():
		s.w.Cancel(cc.ID)
		return nil, s.proposeCtxErr(ctx.Err(), start)
	case <-s.stopping:
		s.w.Cancel(cc.ID)
		return nil, ErrStopped
	}
}

// proposeConfChange hands cc to raft once a leader is known, retrying
// while raft drops it (no leader yet, or a leadership transfer under way).
func (s *Server) proposeConfChange(ctx context.Context, cc raftpb.ConfChange, start time.Time) error {
	tick := time.NewTicker(s.cfg.TickInterval())
	defer tick.Stop()
	for {
		if s.Leader() != raft.None {
			err := s.node.ProposeConfChange(cc)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, raftnode.ErrStopped):
				return ErrStopped
			case !errors.Is(err, raft.ErrProposalDropped):
				return err
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return s.proposeCtxErr(ctx.Err(), start)
		case <-s.stopping:
			return ErrStopped
		}
	}
}

// confChangeApplied is called by the apply loop after each conf change
// entry (replays included): it wakes the proposer with the member set as
// of the entry, and starts this member's exit if the entry removed it.
func (s *Server) confChangeApplied(cc raftpb.ConfChange, err error) {
	s.w.Trigger(cc.ID, applyResult{resp: s.cl.Members(), err: err})
	if err == nil && cc.Type == raftpb.ConfChangeRemoveNode && cc.NodeID == s.ID() {
		s.removedFromCluster(ErrMemberRemoved)
	}
}

// removedFromCluster stops this member removedStopDelay after it learned
// it was removed (cause wraps ErrMemberRemoved): it applied its own
// removal, or a peer refused it as removed. The delay lets the commit
// reach the others and an apply under way answer the client that asked
// (a peer's 410 often arrives before this member applies its removal).
//
// If it still leads (raft keeps a removed leader leading until it stops:
// the removal was asked of a member that did not hand leadership over
// first, such as an etcd member), it tries to hand leadership to the voter
// it has been connected to longest. That is best effort: peers that have
// applied the removal already refuse its messages.
func (s *Server) removedFromCluster(cause error) {
	s.rc.removedOnce.Do(func() {
		s.lg.Warn("this member was removed from the cluster; it stops shortly, and its data dir cannot be used again",
			zap.String("local-member-id", membership.FormatID(s.ID())),
			zap.Duration("stops-in", removedStopDelay), zap.Error(cause))
		if id := s.rc.selfRemoval.Load(); id != 0 {
			// A client waits for this removal. That this member is removed
			// proves it was committed, even if the commit never reaches
			// this member (the leader drops its connections on applying
			// it): answer with the member set without this member.
			s.w.Trigger(id, applyResult{resp: s.membersWithout(s.ID())})
		}
		if s.node.IsLeader() {
			if to, ok := s.longestConnectedVoter(); ok {
				s.lg.Info("removed leader hands over leadership",
					zap.String("transferee-member-id", membership.FormatID(to)))
				if err := s.node.TransferLeadership(to); err != nil {
					s.lg.Warn("leadership hand-over after removal failed", zap.Error(err))
				}
			}
		}
		go func() {
			t := time.NewTimer(removedStopDelay)
			defer t.Stop()
			select {
			case <-t.C:
				s.exit(cause)
			case <-s.stopping:
			}
		}()
	})
}

// membersWithout is the member set without member id.
func (s *Server) membersWithout(id uint64) []*membership.Member {
	ms := s.cl.Members()
	for i, m := range ms {
		if m.ID == id {
			return append(ms[:i], ms[i+1:]...)
		}
	}
	return ms
}

// longestConnectedVoter is the voting member, other than this one, whose
// peer connection has been active the longest (etcd's choice of a
// leadership transferee); false when none is active.
func (s *Server) longestConnectedVoter() (uint64, bool) {
	var (
		best   uint64
		oldest time.Time
	)
	for _, m := range s.cl.Members() {
		if m.ID == s.ID() || m.IsLearner {
			continue
		}
		t := s.PeerActiveSince(m.ID)
		if t.IsZero() {
			continue
		}
		if best == 0 || t.Before(oldest) {
			best, oldest = m.ID, t
		}
	}
	return best, best != 0
}
