package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/lease"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/raftnode"
	"github.com/cairnkv/cairn/internal/schema"
)

// Leases, as etcd runs them: the lessor (internal/lease) is applied on every
// member; the leader's lessor is primary and decides expiry. This file is
// the shell around it: the goroutine that turns expired leases into
// LeaseRevoke proposals and due checkpoints into LeaseCheckpoint proposals,
// promotion and demotion with leadership, and the client requests, which a
// follower forwards to the leader over the peer port (leasehttp.go).

// Errors of lease requests, beyond the lessor's own.
var (
	// ErrLeaderChanged: the leader was demoted while answering (etcd's
	// "etcdserver: leader changed").
	ErrLeaderChanged = errors.New("server: leader changed")
	// ErrTimeoutWaitAppliedIndex: the leader could not apply what it had
	// committed within a second.
	ErrTimeoutWaitAppliedIndex = errors.New("server: request timed out, waiting for the applied index took too long")
)

// Timings of the lease shell, etcd's.
const (
	// leaseLoopInterval is how often the leader looks for expired leases
	// and due checkpoints.
	leaseLoopInterval = 500 * time.Millisecond
	// maxPendingRevokes bounds the revocations in flight.
	maxPendingRevokes = 16
	// applyWaitTimeout bounds the wait for apply to reach commit before a
	// renewal or TimeToLive is answered.
	applyWaitTimeout = time.Second
	// forwardRetryPause paces forwarding attempts to the leader.
	forwardRetryPause = 50 * time.Millisecond
	// leaseOverhead is etcd's estimate of a lease's backend cost.
	leaseOverhead = 64
)

// minLeaseTTL is etcd's minimum lease TTL: 1.5 election timeouts (counted in
// whole ticks), rounded up to a second.
func minLeaseTTL(cfg Config) int64 {
	d := time.Duration((3*cfg.ElectionTicks)/2) * cfg.TickInterval()
	return int64(math.Ceil(d.Seconds()))
}

// leaseShell is the server's lease state beyond the lessor.
type leaseShell struct {
	metrics *lease.Metrics
	expired prometheus.Counter
	// revokec hands batches of expired leases to the revoker.
	revokec chan []int64
}

// newLessor builds the lessor and its metrics; leases are loaded by
// recoverLeases before the store attaches keys to them.
func (s *Server) newLessor() {
	m := lease.NewMetrics()
	s.leases = &leaseShell{
		metrics: m,
		expired: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd_debugging", Subsystem: "server", Name: "lease_expired_total",
			Help: "The total number of expired leases."}),
		revokec: make(chan []int64, maxPendingRevokes),
	}
	if s.cfg.Registerer != nil {
		s.cfg.Registerer.MustRegister(append(m.Collectors(), s.leases.expired)...)
	}
	s.lessor = lease.New(lease.Config{
		MinTTL:               minLeaseTTL(s.cfg),
		Checkpointing:        s.cfg.LeaseCheckpoint,
		CheckpointInterval:   s.cfg.LeaseCheckpointInterval,
		ExpiredRetryInterval: s.cfg.RequestTimeout(),
		Metrics:              m,
	})
}

// recoverLeases loads the lessor from the backend's lease bucket (at start,
// and after a snapshot replaced the backend, before the store reloads).
func (s *Server) recoverLeases() error {
	v := s.be.Read()
	recs, err := schema.ReadLeases(v)
	v.End()
	if err != nil {
		return fmt.Errorf("read leases: %w", err)
	}
	s.lessor.Recover(recs)
	return nil
}

// leadershipChanged demotes the lessor when this member stops leading.
// Raft goroutine (OnLeaderChange). Promotion waits for the new term's first
// entry to be applied (onEmptyEntry).
func (s *Server) leadershipChanged(lead uint64) {
	if lead != s.ID() {
		s.lessor.Demote()
	}
}

// onEmptyEntry is called by the apply loop for every empty entry, with the
// entry's term: a leader that has applied its own term's first entry (the
// empty one raft appends on election) has applied everything of the terms
// before, and promotes its lessor, extending every lease by an election
// timeout so that none expires early across the change. An earlier term's
// empty entry, applied by a new leader on its way, does not promote it.
func (s *Server) onEmptyEntry(term uint64) {
	if s.node.IsLeader() && term == s.node.Term() {
		s.lessor.Promote(s.cfg.ElectionTimeout())
	}
}

// startLessor runs the leader's lease loop and the revoker until Stop.
func (s *Server) startLessor() {
	s.bg.Add(2)
	go func() { defer s.bg.Done(); s.leaseLoop() }()
	go func() { defer s.bg.Done(); s.revoker() }()
}

// leaseLoop looks for expired leases and due checkpoints every 500 ms;
// the lessor answers only while primary.
func (s *Server) leaseLoop() {
	t := time.NewTicker(leaseLoopInterval)
	defer t.Stop()
	for {
		if ids := s.lessor.Expired(lease.DefaultRevokeRate / 2); len(ids) > 0 {
			select {
			case s.leases.revokec <- ids:
			default:
				// The revoker is busy; these come back after the retry
				// interval, as in etcd.
			}
		}
		s.checkpointDue()
		select {
		case <-t.C:
		case <-s.stopping:
			return
		}
	}
}

// checkpointDue proposes the due checkpoints in batches, at most
// lease.DefaultRevokeRate/2 batches per round.
func (s *Server) checkpointDue() {
	var term uint64
	for i := 0; i < lease.DefaultRevokeRate/2; i++ {
		cps := s.lessor.DueCheckpoints(lease.MaxCheckpointBatch)
		if len(cps) > 0 {
			if term == 0 {
				var ok bool
				if term, _, ok = s.ensureLeadership(context.Background()); !ok {
					s.lg.Warn("Ignore the checkpoint request because current member isn't a leader",
						zap.Uint64("local-member-id", s.ID()))
					return
				}
			}
			if err := s.proposeCheckpoints(context.Background(), cps, term); err != nil {
				return
			}
		}
		if len(cps) < lease.MaxCheckpointBatch {
			return
		}
	}
}

// proposeCheckpoints proposes checkpoints as the leader of term
// (lease.ErrNotPrimary once this member no longer leads in it). Like etcd,
// a checkpoint that fails otherwise is not an error: the next checkpoint or
// renewal makes up for it.
func (s *Server) proposeCheckpoints(ctx context.Context, cps []*pb.LeaseCheckpoint, term uint64) error {
	_, err := s.proposeAsLeader(ctx, &pb.InternalRaftRequest{LeaseCheckpoint: &pb.LeaseCheckpointRequest{Checkpoints: cps}}, term)
	if errors.Is(err, raftnode.ErrNotLeader) {
		return lease.ErrNotPrimary
	}
	if err != nil {
		s.lg.Debug("lease checkpoint failed", zap.Error(err))
	}
	return nil
}

// revoker proposes the revocation of expired leases, up to
// maxPendingRevokes at a time, after confirming that this member still
// leads (a leader cut off from the others must not revoke). Each revocation
// is proposed as the leader of the confirmed term: should this member lose
// that term before raft takes the proposal, it is dropped rather than
// forwarded to the new leader, whose lessor may well have seen the lease
// renewed.
func (s *Server) revoker() {
	sem := make(chan struct{}, maxPendingRevokes)
	for {
		var ids []int64
		select {
		case ids = <-s.leases.revokec:
		case <-s.stopping:
			return
		}
		term, _, ok := s.ensureLeadership(context.Background())
		if !ok {
			s.lg.Warn("Ignore the lease revoking request because current member isn't a leader",
				zap.Uint64("local-member-id", s.ID()))
			continue
		}
		for _, id := range ids {
			select {
			case sem <- struct{}{}:
			case <-s.stopping:
				return
			}
			s.bg.Add(1)
			go func(id int64) {
				defer s.bg.Done()
				defer func() { <-sem }()
				if _, err := s.proposeAsLeader(context.Background(), &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}}, term); err != nil {
					s.lg.Warn("failed to revoke lease", zap.String("lease-id", fmt.Sprintf("%016x", id)), zap.Error(err))
					return
				}
				s.leases.expired.Inc()
			}(id)
		}
	}
}

// waitAppliedIndex waits until everything committed so far is applied, at
// most a second.
func (s *Server) waitAppliedIndex() error {
	committed := s.CommittedIndex()
	if s.applied.Applied() >= committed {
		return nil // the usual case: no timer
	}
	t := time.NewTimer(applyWaitTimeout)
	defer t.Stop()
	select {
	case <-s.applied.Wait(committed):
		return nil
	case <-s.stopping:
		return ErrStopped
	case <-t.C:
		return ErrTimeoutWaitAppliedIndex
	}
}

// waitLeader returns the leader member, waiting an election timeout at a
// time while there is none; ErrNoLeader when ctx ends first.
func (s *Server) waitLeader(ctx context.Context) (*membership.Member, error) {
	leader := s.cl.Member(s.Leader())
	for leader == nil {
		t := time.NewTimer(s.cfg.ElectionTimeout())
		select {
		case <-t.C:
			leader = s.cl.Member(s.Leader())
		case <-s.stopping:
			t.Stop()
			return nil, ErrStopped
		case <-ctx.Done():
			t.Stop()
			return nil, ErrNoLeader
		}
	}
	if len(leader.PeerURLs) == 0 {
		return nil, ErrNoLeader
	}
	return leader, nil
}

// LeaseGrant grants a lease through raft. ID 0 asks the server to choose
// one, from the request ID generator as etcd does (the low 63 bits of the
// next request ID).
func (s *Server) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if !s.quotaAvailable(leaseOverhead) {
		return nil, s.refuseOverQuota(ctx)
	}
	req := &pb.LeaseGrantRequest{ID: r.ID, TTL: r.TTL}
	for req.ID == 0 {
		req.ID = int64(s.ids.Next() & (1<<63 - 1))
	}
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{LeaseGrant: req})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.LeaseGrantResponse), nil
}

// LeaseRevoke revokes a lease through raft: its keys are deleted in one
// revision on every member.
func (s *Server) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{LeaseRevoke: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.LeaseRevokeResponse), nil
}

// LeaseRenew renews a lease and returns its TTL. The leader renews it
// itself (renewAsLeader); any other member forwards the renewal to the
// leader's peer URLs until one answers or the request timeout passes.
func (s *Server) LeaseRenew(ctx context.Context, id int64) (int64, error) {
	if s.node.IsLeader() {
		ttl, err := s.renewAsLeader(ctx, id)
		// Deposed meanwhile, it forwards the renewal to the successor.
		if err == nil || !errors.Is(err, lease.ErrNotPrimary) || s.node.IsLeader() {
			return ttl, err
		}
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout())
	defer cancel()
	for cctx.Err() == nil {
		leader, err := s.waitLeader(cctx)
		if err != nil {
			return -1, err
		}
		for _, u := range leader.PeerURLs {
			ttl, err := s.renewAt(cctx, u, id)
			if err == nil || errors.Is(err, lease.ErrNotFound) {
				return ttl, err
			}
		}
		s.pause(cctx, forwardRetryPause)
	}
	return -1, forwardErr(cctx)
}

// forwardErr is the error of a forwarding loop whose context ended.
func forwardErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrTimeout
	}
	return ErrCanceled
}

// pause waits d, or less if ctx ends or the server stops.
func (s *Server) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.stopping:
	}
}

// renewAsLeader renews a lease in this member's lessor once it has
// confirmed that it leads (leadership.go: a ReadIndex round started less
// than half an election timeout ago, or a new one) and applied what it
// committed, and answers only if the renewal was made within the sole-leader
// window of that confirmation, so the TTL it promises never outlasts the
// lease on a successor. A renewal that took longer (the process was paused,
// or stalled, between the confirmation and the renewal) is answered
// lease.ErrNotPrimary, and the client renews again. Without these checks a
// leader paused past its term answered renewals on waking up, and the
// client counted on a TTL its lease no longer had (robustness
// cairn-3/pause-leader/seed-17).
func (s *Server) renewAsLeader(ctx context.Context, id int64) (int64, error) {
	term, start, ok := s.confirmRecentLeadership(ctx, s.confirmationReuse())
	if !ok {
		return -1, lease.ErrNotPrimary
	}
	if err := s.waitAppliedIndex(); err != nil {
		return 0, err
	}
	ttl, err := s.renewLocal(ctx, id, term)
	if err != nil {
		return ttl, err
	}
	if took := time.Since(start); took >= s.soleLeaderWindow() {
		s.lg.Warn("lease renewal not answered: leadership was confirmed too long ago to be sure no successor exists",
			zap.String("lease-id", fmt.Sprintf("%016x", id)), zap.Duration("since-confirmation", took),
			zap.Duration("sole-leader-window", s.soleLeaderWindow()))
		return -1, lease.ErrNotPrimary
	}
	return ttl, nil
}

// renewLocal renews a lease in this member's lessor, which must be primary
// (else lease.ErrNotPrimary), for the leader of term. A lease that has
// expired is not revived: the renewal waits for its revocation
// (lease.ErrNotFound) or for a demotion (lease.ErrNotPrimary). A lease
// carrying a checkpointed remaining TTL has it cleared through raft first.
func (s *Server) renewLocal(ctx context.Context, id int64, term uint64) (int64, error) {
	r, err := s.lessor.BeginRenew(id)
	if err != nil {
		return -1, err
	}
	if r.Expired {
		select {
		case <-r.Revoked:
			return -1, lease.ErrNotFound
		case <-r.Demoted:
			return -1, lease.ErrNotPrimary
		case <-s.stopping:
			return -1, lease.ErrNotPrimary
		case <-ctx.Done():
			return -1, ErrCanceled
		}
	}
	if r.ClearCheckpoint {
		if err := s.proposeCheckpoints(ctx, []*pb.LeaseCheckpoint{{ID: id}}, term); err != nil {
			return -1, err
		}
	}
	return s.lessor.Renew(id)
}

// LeaseTimeToLive reports a lease's granted and remaining TTL (and keys);
// lease.ErrNotFound for an unknown lease. Only the leader knows the
// remaining TTL: other members ask it over the peer port.
func (s *Server) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if s.node.IsLeader() {
		resp, err := s.timeToLiveAsLeader(ctx, r.ID, r.Keys)
		if !errors.Is(err, lease.ErrNotPrimary) {
			return resp, err
		}
		if s.node.IsLeader() {
			// Not confirmed in time: the client retries.
			return nil, ErrLeaderChanged
		}
		// Deposed meanwhile, it asks the successor.
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout())
	defer cancel()
	for cctx.Err() == nil {
		leader, err := s.waitLeader(cctx)
		if err != nil {
			return nil, err
		}
		for _, u := range leader.PeerURLs {
			resp, err := s.timeToLiveAt(cctx, u, r.ID, r.Keys)
			if err == nil || errors.Is(err, lease.ErrNotFound) {
				return resp, err
			}
		}
		s.pause(cctx, forwardRetryPause)
	}
	return nil, forwardErr(cctx)
}

// timeToLiveAsLeader answers TimeToLive from this member's lessor once it
// has confirmed that it leads (leadership.go) and applied what it
// committed, and only if the answer was made within half an election
// timeout of the confirmation's start: no successor exists before an
// election timeout (less a tick) has passed since then, so nothing was
// committed elsewhere that the answer misses, and the answer is
// linearizable. A leader paused or cut off past its term would otherwise
// answer from a lessor nobody follows: a lease its successor has revoked
// as alive, one its successor granted as not found. lease.ErrNotPrimary
// when not confirmed.
func (s *Server) timeToLiveAsLeader(ctx context.Context, id int64, keys bool) (*pb.LeaseTimeToLiveResponse, error) {
	_, start, ok := s.confirmRecentLeadership(ctx, s.confirmationReuse())
	if !ok {
		return nil, lease.ErrNotPrimary
	}
	if err := s.waitAppliedIndex(); err != nil {
		return nil, err
	}
	resp, err := s.timeToLiveLocal(id, keys)
	if err != nil && !errors.Is(err, lease.ErrNotFound) {
		return nil, err
	}
	if took := time.Since(start); took >= s.soleLeaderWindow() {
		s.lg.Warn("lease time-to-live not answered: leadership was confirmed too long ago to be sure no successor exists",
			zap.String("lease-id", fmt.Sprintf("%016x", id)), zap.Duration("since-confirmation", took),
			zap.Duration("sole-leader-window", s.soleLeaderWindow()))
		return nil, lease.ErrNotPrimary
	}
	return resp, err
}

// timeToLiveLocal answers TimeToLive from this member's lessor;
// lease.ErrNotPrimary when the lease has no expiry here (not primary).
func (s *Server) timeToLiveLocal(id int64, keys bool) (*pb.LeaseTimeToLiveResponse, error) {
	st, err := s.lessor.TimeToLive(id, keys)
	if err != nil {
		return nil, err
	}
	if st.Demoted {
		return nil, lease.ErrNotPrimary
	}
	return &pb.LeaseTimeToLiveResponse{
		Header:     &pb.ResponseHeader{},
		ID:         id,
		TTL:        int64(st.Remaining.Seconds()),
		GrantedTTL: st.GrantedTTL,
		Keys:       st.Keys,
	}, nil
}

// LeaseLeases lists this member's leases (soonest expiry first on the
// leader), as etcd: from local state, without asking the leader.
func (s *Server) LeaseLeases(ctx context.Context) (*pb.LeaseLeasesResponse, error) {
	ids := s.lessor.Leases()
	out := make([]*pb.LeaseStatus, len(ids))
	for i, id := range ids {
		out[i] = &pb.LeaseStatus{ID: id}
	}
	return &pb.LeaseLeasesResponse{Header: &pb.ResponseHeader{Revision: s.kv.Rev()}, Leases: out}, nil
}
