// Package server is cairn's composition root: it bootstraps or restarts a
// member from its data dir, wires raft, the WAL, the backend and the state
// machine together, and serves proposals, linearizable reads and
// maintenance requests to the API layer.
//
// Goroutines owned here: the raftnode Ready loop, the apply loop (the only
// writer of the state machine), the ReadIndex loop, and background jobs.
package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/apply"
	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/lease"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/mvcc"
	"github.com/cairnkv/cairn/internal/raftnode"
	"github.com/cairnkv/cairn/internal/txn"
	"github.com/cairnkv/cairn/internal/v2store"
	"github.com/cairnkv/cairn/internal/watch"
)

// Version is the etcd server version cairn reports to clients and peers.
// It is 3.6.0 so that etcd 3.6 peers and clients treat cairn as an equal
// (peer protocol §7.6).
const Version = "3.6.0"

// ClusterVersion is the cluster version cairn's leader decides.
const ClusterVersion = "3.6.0"

// StorageVersion is written to meta/storageVersion.
const StorageVersion = "3.6.0"

// Server is one running member.
type Server struct {
	cfg   Config
	lg    *zap.Logger
	ids   *reqIDGen
	w     *waiters
	m     *metrics
	node  *raftnode.Node
	store *raftStorage
	be    *backend.Backend
	kv    *mvcc.Store
	exec  *txn.Executor
	// watchHub serves watches from the store's writes (watch.go).
	watchHub *watch.Hub
	cl       *membership.Cluster
	rd       *reader
	disk     *diskGuard
	// tr carries raft messages to and from the other members; peers keeps
	// its member list in step with the cluster's.
	tr    peerTransport
	peers *peerSet
	// rc is runtime reconfiguration's bookkeeping (reconfig.go).
	rc reconfigState
	// snapc carries MsgSnap from the Ready loop to the apply loop, which
	// rebuilds them from the applied state (snapsend.go).
	snapc            chan raftpb.Message
	snapsInflight    atomic.Int64
	lastSnapshotSent atomic.Int64 // unix nanos
	// peerClient makes requests to peers outside the raft streams
	// (/members, /members/hashkv).
	peerClient *http.Client
	// lastCompactHashChecked is the newest compaction revision whose hash
	// every member matched; used by the compaction hash check only.
	lastCompactHashChecked int64
	// alarms are the active alarms as applied.
	alarms *apply.Alarms
	// lessor holds the leases; leases is the shell around it (lease.go).
	lessor *lease.Lessor
	leases *leaseShell
	// leadership is the last ReadIndex confirmation of this member's
	// leadership (leadership.go).
	leadership leadershipConfirmation
	// applier is used only by the apply goroutine.
	applier *apply.Applier
	// applyMu is held by whoever applies: the apply loop, or the raft loop
	// for the batches it applies itself (applyloop.go).
	applyMu sync.Mutex
	// v2 is the v2 key tree (v2.go), changed by the apply goroutine only.
	v2 *v2store.Store
	// v2stats counts what /v2/stats/self and /v2/stats/leader show
	// (v2stats.go).
	v2stats v2Stats

	applied   *indexWaiter
	committed atomic.Uint64
	// snapshotIndex is the index of the newest raft snapshot on disk.
	snapshotIndex atomic.Uint64
	// confState is the raft configuration as of the last applied entry.
	// Written by the apply goroutine only.
	confState raftConfState

	leaderChangedAt atomic.Int64  // unix nanos of the last leader change
	readyc          chan struct{} // closed once attributes are published
	installs        broadcast     // fires on every snapshot install
	// bootCommit is the commit index of the WAL a restarting member read:
	// what it had committed, membership changes included, before it stopped.
	bootCommit uint64
	stopping   chan struct{}
	deadlines  *sharedDeadline // bounds proposals' waits
	stopOnce   sync.Once
	done       chan struct{}
	fatalOnce  sync.Once
	errc       chan error // a fatal error the launcher must exit on
	bg         sync.WaitGroup
}

// New bootstraps or restarts a member from cfg.DataDir. It does not start
// serving; call Start.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s, err := bootstrap(cfg)
	if err != nil {
		return nil, err
	}
	s.cl.SetMaxLearners(cfg.maxLearners())
	return s, nil
}

// Start runs the member's goroutines.
func (s *Server) Start() {
	s.node.Start()
	s.bg.Add(3)
	go func() { defer s.bg.Done(); s.applyLoop() }()
	go func() { defer s.bg.Done(); s.rd.run() }()
	go func() { defer s.bg.Done(); s.publish() }()
	s.startCompactor()
	s.startCorruptionChecks()
	s.startV2Expiry()
	s.startLessor()
	if s.cl.IsRemoved(s.ID()) {
		// The snapshot this member restarted from already has it removed.
		s.removedFromCluster(ErrMemberRemoved)
	}
}

// ReadyNotify is closed once the member has published its attributes
// through raft and can serve clients.
func (s *Server) ReadyNotify() <-chan struct{} { return s.readyc }

// Err delivers a fatal error (e.g. the disk failed); the launcher stops the
// process when one arrives.
func (s *Server) Err() <-chan error { return s.errc }

// StopNotify is closed once the server has stopped.
func (s *Server) StopNotify() <-chan struct{} { return s.done }

// Stop stops the member and closes its storage. Safe to call twice.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		close(s.stopping)
		if s.tr != nil {
			s.tr.Stop()
		}
		s.node.Stop()
		s.bg.Wait()
		s.deadlines.stop()
		s.watchHub.Close()
		s.kv.Close()
		if err := s.be.Close(); err != nil {
			s.lg.Warn("failed to close backend", zap.Error(err))
		}
		if err := s.store.Close(); err != nil {
			s.lg.Warn("failed to close WAL", zap.Error(err))
		}
		close(s.done)
	})
	<-s.done
}

// fatal reports an unrecoverable error (the one path for "disk gone"): the
// launcher logs it and exits; nothing more is written.
//
// A removed member (ErrMemberRemoved, e.g. a peer answered 410) is not a
// failure: it stops shortly after (removedFromCluster), and the launcher
// logs etcd's lines for it.
func (s *Server) fatal(err error) {
	if errors.Is(err, ErrMemberRemoved) {
		s.removedFromCluster(err)
		return
	}
	s.fatalOnce.Do(func() {
		s.lg.Error("member cannot continue", zap.Error(err))
		s.errc <- err
	})
}

// exit hands err to the launcher, once; the launcher stops the member.
func (s *Server) exit(err error) {
	s.fatalOnce.Do(func() { s.errc <- err })
}

// ID is this member's ID.
func (s *Server) ID() uint64 { return s.cl.LocalID() }

// ClusterID is the cluster's ID.
func (s *Server) ClusterID() uint64 { return s.cl.ID() }

// Leader is the current leader's ID (0: none).
func (s *Server) Leader() uint64 { return s.node.Leader() }

// RaftStatus is raft's status of this member; false once it has stopped.
// It waits for the raft goroutine, so it is for debugging endpoints, not hot
// paths.
func (s *Server) RaftStatus() (raft.Status, bool) {
	st, err := s.node.Status()
	return st, err == nil
}

// Term is the current raft term.
func (s *Server) Term() uint64 { return s.node.Term() }

// AppliedIndex is the index of the last applied entry.
func (s *Server) AppliedIndex() uint64 { return s.applied.Applied() }

// CommittedIndex is the last committed index seen in a Ready.
func (s *Server) CommittedIndex() uint64 { return s.committed.Load() }

// Cluster is the member set.
func (s *Server) Cluster() *membership.Cluster { return s.cl }

// KV is the mvcc store (reads only outside the apply goroutine).
func (s *Server) KV() *mvcc.Store { return s.kv }

// Backend is the bbolt backend.
func (s *Server) Backend() *backend.Backend { return s.be }

// RaftHandler serves the peer transport's endpoints (/raft, /raft/...);
// nil when this member has no peer transport.
func (s *Server) RaftHandler() http.Handler {
	if s.tr == nil {
		return nil
	}
	return s.tr.Handler()
}

// PeerActiveSince is when the connection to peer id became active (zero:
// not active, or no transport).
func (s *Server) PeerActiveSince(id uint64) time.Time {
	if s.tr == nil {
		return time.Time{}
	}
	return s.tr.ActiveSince(id)
}

// Config returns the server's configuration.
func (s *Server) Config() Config { return s.cfg }

// decideClusterVersion sets the cluster version once, as etcd's leader does
// after its first commit: cairn only ever decides 3.6.0, the version every
// etcd 3.6 member accepts. It keeps trying while this member leads and no
// version is set.
func (s *Server) decideClusterVersion() {
	for s.cl.Version() == "" {
		if s.node.IsLeader() {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout())
			_, err := s.propose(ctx, &pb.InternalRaftRequest{ClusterVersionSet: &membershippb.ClusterVersionSetRequest{Ver: ClusterVersion}})
			cancel()
			if err == nil {
				s.lg.Info("set initial cluster version", zap.String("cluster-version", ClusterVersion))
				s.m.clusterVersion.WithLabelValues(ClusterVersion).Set(1)
				return
			}
			if errors.Is(err, ErrStopped) {
				return
			}
		}
		t := time.NewTimer(monitorVersionInterval)
		select {
		case <-t.C:
		case <-s.stopping:
			t.Stop()
			return
		}
	}
	s.m.clusterVersion.WithLabelValues(s.cl.Version()).Set(1)
}

// monitorVersionInterval is how often a member without a decided cluster
// version checks again (etcd's value).
const monitorVersionInterval = 4 * time.Second

// propose sends a request through raft and waits for its apply result.
func (s *Server) propose(ctx context.Context, req *pb.InternalRaftRequest) (any, error) {
	r, err := s.proposeRaw(ctx, req)
	if err != nil {
		return nil, err
	}
	return r.resp, r.err
}

// proposeRaw proposes req and returns the apply result; the error is set
// when the request never got applied.
func (s *Server) proposeRaw(ctx context.Context, req *pb.InternalRaftRequest) (applyResult, error) {
	return s.proposeIn(ctx, req, 0)
}

// proposeAsLeader proposes req as a decision of the leader of term: it
// reaches raft only while this member still leads in term (else
// raftnode.ErrNotLeader), so a deposed leader's proposal is never forwarded
// to its successor (raftnode.Node.ProposeAsLeader).
func (s *Server) proposeAsLeader(ctx context.Context, req *pb.InternalRaftRequest, term uint64) (any, error) {
	if term == 0 {
		return nil, raftnode.ErrNotLeader
	}
	r, err := s.proposeIn(ctx, req, term)
	if err != nil {
		return nil, err
	}
	return r.resp, r.err
}

// proposeIn is proposeRaw, bound to the leader of term unless term is 0.
func (s *Server) proposeIn(ctx context.Context, req *pb.InternalRaftRequest, term uint64) (applyResult, error) {
	if s.CommittedIndex() > s.AppliedIndex()+maxGapApplyCommit {
		return applyResult{}, ErrTooManyRequests
	}
	if err := s.disk.check(); err != nil {
		return applyResult{}, err
	}
	id := s.ids.Next()
	req.Header = &pb.RequestHeader{ID: id}
	data, err := req.Marshal()
	if err != nil {
		return applyResult{}, fmt.Errorf("marshal request: %w", err)
	}
	if len(data) > int(s.cfg.MaxRequestBytes) {
		return applyResult{}, ErrRequestTooLarge
	}
	ch := s.w.Register(id, req)
	start := time.Now()
	// The request's own ctx says when the client gives up; dl bounds the
	// wait as etcd's request timeout does, without a context per request.
	dl := s.deadlines.get(start)
	if term != 0 {
		s.node.ProposeAsLeader(dl, id, term, data)
	} else {
		s.node.Propose(dl, id, data)
	}
	s.m.proposalsPending.Inc()
	defer s.m.proposalsPending.Dec()
	select {
	case r := <-ch:
		s.w.Recycle(ch)
		return r, nil
	case <-ctx.Done():
		s.w.Cancel(id)
		s.m.proposalsFailed.Inc()
		return applyResult{}, s.proposeCtxErr(ctx.Err(), start)
	case <-dl.Done():
		s.w.Cancel(id)
		s.m.proposalsFailed.Inc()
		return applyResult{}, s.deadlineErr(dl, start)
	case <-s.stopping:
		s.w.Cancel(id)
		return applyResult{}, ErrStopped
	}
}

// deadlineErr is the error for a proposal whose shared deadline context
// ended: a timeout, or ErrStopped when the server cancelled it on the way
// down.
func (s *Server) deadlineErr(dl context.Context, start time.Time) error {
	if errors.Is(dl.Err(), context.Canceled) {
		return ErrStopped
	}
	return s.proposeCtxErr(context.DeadlineExceeded, start)
}

// maxGapApplyCommit bounds how far apply may lag commit before new
// proposals are refused (etcd's value).
const maxGapApplyCommit = 5000

func (s *Server) proposeCtxErr(err error, start time.Time) error {
	switch {
	case errors.Is(err, context.Canceled):
		return ErrCanceled
	case errors.Is(err, context.DeadlineExceeded):
		if ch := s.leaderChangedAt.Load(); ch > start.UnixNano() {
			return ErrTimeoutLeaderFail
		}
		if s.Leader() == raft.None {
			return ErrNoLeader
		}
		return ErrTimeout
	case err == nil:
		return ErrTimeout
	}
	return err
}

// LinearizableReadNotify returns once local reads are linearizable.
func (s *Server) LinearizableReadNotify(ctx context.Context) error { return s.rd.wait(ctx) }
