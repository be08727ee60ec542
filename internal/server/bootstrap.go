package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/apply"
	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/mvcc"
	"github.com/cairnkv/cairn/internal/raftnode"
	"github.com/cairnkv/cairn/internal/schema"
	"github.com/cairnkv/cairn/internal/snap"
	"github.com/cairnkv/cairn/internal/txn"
	"github.com/cairnkv/cairn/internal/wal"
)

// raft settings that must agree with etcd's (peer protocol §11).
const (
	maxSizePerMsg             = 1 * 1024 * 1024
	maxInflightMsgs           = 512
	maxUncommittedEntriesSize = 1 << 30
)

// bootstrap opens or creates the data dir and builds a Server that is ready
// to Start. On error everything opened so far is closed again.
func bootstrap(cfg Config) (_ *Server, err error) {
	lg := cfg.Logger
	if err := checkDataDir(lg, cfg); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.DataDir, cfg.MemberDir(), cfg.SnapDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("cannot access data directory: %w", err)
		}
	}
	// s is not the named result: closures below (metrics, fsync hooks) keep
	// using it while the deferred clean-up runs after an error return.
	s := &Server{
		cfg:        cfg,
		lg:         lg,
		w:          newWaiters(),
		readyc:     make(chan struct{}),
		stopping:   make(chan struct{}),
		deadlines:  newSharedDeadline(cfg.RequestTimeout()),
		done:       make(chan struct{}),
		errc:       make(chan error, 1),
		snapc:      make(chan raftpb.Message, maxPendingSnapshots),
		peerClient: peerHTTPClient(cfg.PeerTLS),
	}
	s.m = newMetrics(cfg.Registerer,
		func() float64 { return float64(s.be.Size()) },
		func() float64 { return float64(s.be.SizeInUse()) },
		func() float64 { return float64(s.kv.KeyCount()) })

	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()

	be, err := backend.Open(backend.Config{
		Path:          cfg.BackendPath(),
		BatchInterval: orDefault(cfg.BackendBatchInterval, 100*time.Millisecond),
		BatchLimit:    orDefault(cfg.BackendBatchLimit, 10000),
		FreelistType:  freelistType(cfg.BackendFreelistType),
		MmapSize:      10 * 1024 * 1024 * 1024,
		Logger:        lg,
		OnCommit:      func(d time.Duration) { s.m.backendCommit.Observe(d.Seconds()) },
	})
	if err != nil {
		return nil, fmt.Errorf("open backend: %w", err)
	}
	closers = append(closers, be.Close)
	s.be = be
	tx := be.Lock()
	err = schema.Init(tx)
	if uerr := tx.Unlock(); err == nil {
		err = uerr
	}
	if err != nil {
		return nil, fmt.Errorf("initialise backend schema: %w", err)
	}

	walOpts := wal.Options{
		NoFsync: cfg.UnsafeNoFsync,
		OnFsync: func(d time.Duration) { s.m.walFsync.Observe(d.Seconds()) },
	}
	ss, err := snap.Open(lg, cfg.SnapDir())
	if err != nil {
		return nil, err
	}
	ms := raft.NewMemoryStorage()
	rcfg := &raft.Config{
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             1,
		Storage:                   ms,
		MaxSizePerMsg:             maxSizePerMsg,
		MaxInflightMsgs:           maxInflightMsgs,
		MaxUncommittedEntriesSize: maxUncommittedEntriesSize,
		CheckQuorum:               true,
		PreVote:                   cfg.PreVote,
		Logger:                    newRaftLogger(lg),
	}

	var (
		w         *wal.WAL
		rn        *raft.RawNode
		cl        *membership.Cluster
		snapIndex uint64
		confState raftpb.ConfState
	)
	var known []*membership.Member      // members to reach at start, before any apply
	bootSize := len(cfg.InitialCluster) // members of a new cluster
	if !wal.Exist(cfg.WALPath()) {
		members, local, err := initialMembers(cfg)
		if err != nil {
			return nil, err
		}
		var (
			localID, cid uint64
			peers        []raft.Peer
		)
		if cfg.NewCluster {
			ids := make([]uint64, len(members))
			for i, m := range members {
				ids[i] = m.ID
			}
			cid = membership.ComputeClusterID(ids)
			localID = local.ID
			if len(members) > 1 {
				if err := checkNotBootstrapped(context.Background(), s.peerClient, otherPeerURLs(cfg), localID); err != nil {
					return nil, err
				}
			}
			if cfg.Discovery != nil {
				if members, err = discoverMembers(cfg, s.peerClient, local); err != nil {
					return nil, err
				}
				ids = ids[:0]
				for _, m := range members {
					ids = append(ids, m.ID)
				}
				cid = membership.ComputeClusterID(ids)
			}
			bootSize = len(members)
			for _, m := range members {
				ctx, err := membership.MarshalContext(m, false)
				if err != nil {
					return nil, err
				}
				peers = append(peers, raft.Peer{ID: m.ID, Context: ctx})
			}
			known = members
		} else {
			if cfg.DiscoveryURL != "" {
				return nil, errDiscoveryWithExisting
			}
			// Joining: the running cluster's member list gives the IDs; the
			// leader then sends the log (or a snapshot) from the start.
			rc, err := fetchCluster(context.Background(), s.peerClient, otherPeerURLs(cfg), joinFetchTimeout)
			if err != nil {
				return nil, fmt.Errorf("cannot fetch cluster info from peer urls: %w", err)
			}
			if known, localID, err = adoptIDs(cfg, members, rc); err != nil {
				return nil, err
			}
			cid = rc.id
		}
		md, err := (&pb.Metadata{NodeID: localID, ClusterID: cid}).Marshal()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(cfg.WALPath(), 0o700); err != nil {
			return nil, fmt.Errorf("cannot access WAL directory: %w", err)
		}
		if w, err = wal.Create(lg, cfg.WALPath(), md, walOpts); err != nil {
			return nil, fmt.Errorf("create wal: %w", err)
		}
		closers = append(closers, w.Close)
		cl = membership.NewCluster(cid, localID, maxLearners)
		rcfg.ID = localID
		// A joining member always has peers.
		rcfg.AsyncStorageWrites = useAsyncStorageWrites(bootSize > 1 || !cfg.NewCluster)
		lg.Info("starting local member",
			zap.String("local-member-id", membership.FormatID(localID)),
			zap.String("cluster-id", membership.FormatID(cid)),
			zap.Bool("joining", !cfg.NewCluster))
		if rn, err = raft.NewRawNode(rcfg); err != nil {
			return nil, fmt.Errorf("start raft: %w", err)
		}
		if len(peers) > 0 {
			if err := rn.Bootstrap(peers); err != nil {
				return nil, fmt.Errorf("bootstrap raft: %w", err)
			}
		}
	} else {
		if cfg.NewCluster && len(cfg.InitialCluster) > 0 {
			lg.Debug("initial cluster flags ignored: data dir already initialised")
		}
		if cfg.Discovery != nil {
			lg.Warn("discovery token is ignored since cluster already initialized; valid logs are found", zap.String("wal-dir", cfg.WALPath()))
			// The flags say nothing of the cluster's size: never take
			// this member for a lone voter below.
			bootSize = 2
		}
		walSnaps, err := wal.ValidSnapshotEntries(lg, cfg.WALPath())
		if err != nil {
			return nil, fmt.Errorf("read wal snapshot entries: %w", err)
		}
		snapshot, err := ss.LoadNewestAvailable(walSnaps)
		if err != nil && !errors.Is(err, snap.ErrNoSnapshot) {
			return nil, fmt.Errorf("load snapshot: %w", err)
		}
		var walSnap wal.Snapshot
		if snapshot != nil {
			walSnap = wal.Snapshot{Index: snapshot.Metadata.Index, Term: snapshot.Metadata.Term, ConfState: &snapshot.Metadata.ConfState}
			snapIndex = snapshot.Metadata.Index
			confState = snapshot.Metadata.ConfState
		}
		md, st, ents, ww, err := openWAL(lg, cfg.WALPath(), walSnap, walOpts)
		if err != nil {
			return nil, err
		}
		w = ww
		closers = append(closers, w.Close)
		var meta pb.Metadata
		if err := meta.Unmarshal(md); err != nil {
			return nil, fmt.Errorf("decode wal metadata: %w", err)
		}
		if cfg.ForceNewCluster {
			rv := be.Read()
			ci, _, err := schema.ReadConsistentIndex(rv)
			rv.End()
			if err != nil {
				return nil, fmt.Errorf("read consistent index: %w", err)
			}
			st, ents, err = forceNewCluster(lg, w, st, ents, confState, snapIndex, ci, meta.NodeID, meta.ClusterID)
			if err != nil {
				return nil, err
			}
		}
		if snapshot != nil {
			if err := ms.ApplySnapshot(*snapshot); err != nil {
				return nil, fmt.Errorf("restore raft snapshot: %w", err)
			}
		}
		if err := ms.SetHardState(st); err != nil {
			return nil, err
		}
		if err := ms.Append(ents); err != nil {
			return nil, err
		}
		cl = membership.NewCluster(meta.ClusterID, meta.NodeID, maxLearners)
		if snapshot != nil {
			if err := restoreMembership(cl, snapshot.Data); err != nil {
				return nil, fmt.Errorf("restore membership from snapshot: %w", err)
			}
		}
		rcfg.ID = meta.NodeID
		rcfg.Applied = snapIndex
		multi, err := restartHasPeers(be, confState)
		if err != nil {
			return nil, err
		}
		rcfg.AsyncStorageWrites = useAsyncStorageWrites(multi || bootSize > 1)
		s.bootCommit = st.Commit
		lg.Info("restarting local member",
			zap.String("cluster-id", membership.FormatID(meta.ClusterID)),
			zap.String("local-member-id", membership.FormatID(meta.NodeID)),
			zap.Uint64("commit-index", st.Commit))
		if rn, err = raft.NewRawNode(rcfg); err != nil {
			return nil, fmt.Errorf("restart raft: %w", err)
		}
	}
	if known == nil {
		known = cl.Members() // restart: the snapshot's member set
	}
	s.cl = cl
	tr, err := newTransport(s, cfg, cl)
	if err != nil {
		return nil, err
	}
	if tr != nil {
		closers = append(closers, func() error { tr.Stop(); return nil })
		s.tr = tr
	}
	s.peers = newPeerSet(tr, cl.LocalID())
	s.store = &raftStorage{w: w, ss: ss}
	s.ids = newReqIDGen(cl.LocalID(), time.Now())
	s.snapshotIndex.Store(snapIndex)
	s.confState.set(confState)

	// Leases load before the store, which attaches its keys to them.
	s.newLessor()
	if err := s.recoverLeases(); err != nil {
		return nil, err
	}
	mcfg := mvcc.DefaultConfig()
	mcfg.Logger = lg
	mcfg.Lessor = s.lessor
	mcfg.OnEvents = s.onEvents
	if cfg.CompactionBatchLimit > 0 {
		mcfg.CompactionBatchLimit = cfg.CompactionBatchLimit
	}
	if cfg.CompactionSleepInterval > 0 {
		mcfg.CompactionSleepInterval = cfg.CompactionSleepInterval
	}
	kv, err := mvcc.New(be, mcfg)
	if err != nil {
		return nil, fmt.Errorf("open mvcc store: %w", err)
	}
	s.kv = kv
	s.exec = txn.New(kv, s.lessor)
	rv := be.Read()
	ci, _, err := schema.ReadConsistentIndex(rv)
	s.alarms = &apply.Alarms{}
	if err == nil {
		err = s.alarms.Restore(rv)
	}
	rv.End()
	if err != nil {
		return nil, fmt.Errorf("read consistent index: %w", err)
	}
	if snapIndex > ci {
		// A crash after a leader's snapshot was made durable but before its
		// database replaced the backend: install it now, as etcd does.
		if path, perr := ss.DBFilePath(snapIndex); perr == nil {
			lg.Info("installing the database of a received snapshot", zap.String("path", path), zap.Uint64("snapshot-index", snapIndex))
			<-kv.WaitCompaction()
			if err := be.Replace(path); err != nil {
				return nil, fmt.Errorf("install snapshot database: %w", err)
			}
			if err := s.recoverLeases(); err != nil {
				return nil, err
			}
			if err := kv.Reload(); err != nil {
				return nil, fmt.Errorf("rebuild store from snapshot database: %w", err)
			}
			rv := be.Read()
			ci, _, err = schema.ReadConsistentIndex(rv)
			if err == nil {
				err = s.alarms.Restore(rv)
			}
			rv.End()
			if err != nil {
				return nil, fmt.Errorf("read consistent index: %w", err)
			}
		}
	}
	if snapIndex > ci {
		return nil, fmt.Errorf("database file (%s index %d) does not match with snapshot (index %d)", cfg.BackendPath(), ci, snapIndex)
	}
	if err := s.initWatch(); err != nil {
		return nil, err
	}
	closers = append(closers, func() error { s.watchHub.Close(); return nil })
	s.applied = newIndexWaiter(snapIndex)
	s.applier = apply.New(lg, kv, cl, s.alarms, ci, s.exec)
	s.applier.SetProposals(s.w)
	if err := s.openV2(); err != nil {
		return nil, fmt.Errorf("load v2 store: %w", err)
	}
	s.applier.SetLessor(s.lessor, cfg.LeaseCheckpointPersist)

	s.node = raftnode.New(raftnode.Config{
		Logger:        lg,
		Raft:          rn,
		Storage:       ms,
		Persister:     s.store,
		Transport:     raftSender{s},
		TickInterval:  cfg.TickInterval(),
		OnReadStates:  func(rs []raft.ReadState) { s.rd.onReadStates(rs) },
		ElectionTicks: cfg.ElectionTicks,
		LeaderGone:    s.leaderGoneHook(cfg.PreVote),
		OnLeaderChange: func(lead, term uint64) {
			s.leaderChangedAt.Store(time.Now().UnixNano())
			s.m.leaderChanges.Inc()
			if lead != raft.None {
				s.m.hasLeader.Set(1)
			} else {
				s.m.hasLeader.Set(0)
			}
			if lead == s.ID() {
				s.m.isLeader.Set(1)
			} else {
				s.m.isLeader.Set(0)
			}
			s.leadershipChanged(lead)
		},
		OnCommitted: func(c uint64) { s.committed.Store(c) },
		ApplyInline: s.applyInline,
		OnDropped: func(ids []uint64, err error) {
			for _, id := range ids {
				s.w.Trigger(id, applyResult{err: proposalDropped(err)})
			}
		},
		OnFatal:            s.fatal,
		AsyncStorageWrites: rcfg.AsyncStorageWrites,
	})
	// Peers only now: their streams start delivering messages to
	// Process, which needs the node (it queues them until Start).
	s.peers.add(known)
	s.disk = newDiskGuard(cfg.MaxRequestBytes, cfg.SnapDir(), cfg.WALPath())
	s.rd = newReader(lg, s.node, s.ids, s.applied, cfg.RequestTimeout(), s.stopping)
	s.m.serverID.WithLabelValues(membership.FormatID(s.ID())).Set(1)
	s.m.serverVersion.WithLabelValues(Version).Set(1)

	// A lone voter need not wait a whole election timeout for its first
	// election (etcd's --initial-election-tick-advance).
	if cfg.InitialElectionTickAdvance && len(confState.Voters) <= 1 && bootSize <= 1 {
		for i := 0; i < cfg.ElectionTicks-1; i++ {
			rn.Tick()
		}
	}
	return s, nil
}

// maxLearners is etcd's default --max-learners.
const maxLearners = 1

// openWAL opens the WAL at snap and reads it, repairing a torn tail once.
func openWAL(lg *zap.Logger, dir string, walSnap wal.Snapshot, opts wal.Options) ([]byte, raftpb.HardState, []raftpb.Entry, *wal.WAL, error) {
	repaired := false
	for {
		w, err := wal.Open(lg, dir, walSnap, opts)
		if err != nil {
			return nil, raftpb.HardState{}, nil, nil, fmt.Errorf("open wal: %w", err)
		}
		md, st, ents, err := w.ReadAll()
		if err == nil {
			return md, st, ents, w, nil
		}
		w.Close()
		if repaired || !errors.Is(err, wal.ErrTornWrite) {
			return nil, raftpb.HardState{}, nil, nil, fmt.Errorf("read wal: %w", err)
		}
		if !wal.Repair(lg, dir) {
			return nil, raftpb.HardState{}, nil, nil, fmt.Errorf("repair wal: %w", err)
		}
		repaired = true
	}
}

// initialMembers builds the bootstrap member set from --initial-cluster and
// checks this member's place in it with etcd's error texts.
func initialMembers(cfg Config) ([]*membership.Member, *membership.Member, error) {
	var members []*membership.Member
	var local *membership.Member
	for name, urls := range cfg.InitialCluster {
		m := membership.NewMember(name, urls, cfg.InitialClusterToken, nil)
		members = append(members, m)
		if name == cfg.Name {
			local = m
		}
	}
	if local == nil {
		return nil, nil, fmt.Errorf("couldn't find local name %q in the initial cluster configuration", cfg.Name)
	}
	if err := advertiseMatches(cfg, local); err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, m := range members {
		for _, u := range m.PeerURLs {
			if seen[u] {
				return nil, nil, fmt.Errorf("initial cluster %s has duplicate url", initialClusterString(cfg.InitialCluster))
			}
			seen[u] = true
		}
	}
	slices.SortFunc(members, func(a, b *membership.Member) int { return cmp.Compare(a.ID, b.ID) })
	return members, local, nil
}

// advertiseMatches checks the advertised peer URLs against this member's
// initial-cluster URLs (host names resolved), with etcd's texts.
func advertiseMatches(cfg Config, local *membership.Member) error {
	ctx, cancel := context.WithTimeout(context.Background(), advertiseResolveTimeout)
	defer cancel()
	adv := slices.Sorted(slices.Values(cfg.PeerURLs))
	err := urlsMatch(ctx, adv, local.PeerURLs)
	if err == nil {
		return nil
	}
	var missing []string
	for _, u := range local.PeerURLs {
		if !slices.Contains(adv, u) {
			missing = append(missing, cfg.Name+"="+u)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("--initial-cluster has %s but missing from --initial-advertise-peer-urls=%s (%w)", joinURLs(missing), joinURLs(adv), err)
	}
	own := map[string][]string{cfg.Name: adv}
	for _, u := range adv {
		if !slices.Contains(local.PeerURLs, u) {
			missing = append(missing, u)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("--initial-advertise-peer-urls has %s but missing from --initial-cluster=%s", joinURLs(missing), initialClusterString(own))
	}
	return fmt.Errorf("failed to resolve %s to match --initial-cluster=%s (%w)", joinURLs(adv), initialClusterString(own), err)
}

func joinURLs(urls []string) string {
	out := ""
	for i, u := range urls {
		if i > 0 {
			out += ","
		}
		out += u
	}
	return out
}

func initialClusterString(m map[string][]string) string {
	var pairs []string
	for name, urls := range m {
		for _, u := range urls {
			pairs = append(pairs, name+"="+u)
		}
	}
	slices.Sort(pairs)
	return joinURLs(pairs)
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// freelistType maps --backend-bbolt-freelist-type as etcd does: "array"
// selects the array freelist, anything else the map.
func freelistType(s string) string {
	if s == "array" {
		return "array"
	}
	return "map"
}

// useAsyncStorageWrites picks the raft loop's storage mode (raftnode's
// Config.AsyncStorageWrites). With peers, the loop must not wait for the
// local disk: a leader's fsync would otherwise hold back its heartbeats,
// vote answers and read-index rounds, and the replication of the next
// batch. A lone voter has nobody to talk to meanwhile, and the synchronous
// mode saves it two goroutine hand-offs per write; the mode is chosen at
// start (a member that grows from one keeps it until restarted).
func useAsyncStorageWrites(hasPeers bool) bool { return hasPeers }

// restartHasPeers reports whether a restarting member belongs to a cluster
// of more than one member, as far as its backend and newest snapshot know.
func restartHasPeers(be *backend.Backend, cs raftpb.ConfState) (bool, error) {
	if len(cs.Voters)+len(cs.Learners) > 1 {
		return true, nil
	}
	rv := be.Read()
	defer rv.End()
	members, _, err := schema.ReadMembers(rv)
	if err != nil {
		return false, fmt.Errorf("read members: %w", err)
	}
	return len(members) > 1, nil
}
