package rafthttp

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// timing holds the transport's intervals; tests in this package shorten
// them.
type timing struct {
	heartbeat  time.Duration // link heartbeat on idle streams: 5 s / 3
	redial     time.Duration // minimum time between dials of one stream
	streamIdle time.Duration // per-read and per-write timeout on dialled streams: 5 s
}

var defaultTiming = timing{
	heartbeat:  connReadTimeout / 3,
	redial:     100 * time.Millisecond,
	streamIdle: connReadTimeout,
}

// Transport is this member's side of etcd's peer protocol: it sends raft
// messages to the other members over streams and the pipeline, and serves
// their streams and requests (Handler).
//
// Threading: every method is safe for concurrent use. Send never blocks
// and never calls into Raft; AddPeer, RemovePeer, UpdatePeer do not call
// into Raft either (RemovePeer waits for the peer's goroutines, which may
// be inside Raft.Process: Process must return once its ctx is done).
type Transport struct {
	cfg         Config
	lg          *zap.Logger
	localHex    string // LocalID as lowercase hex
	clusterHex  string // ClusterID as lowercase hex
	urlsHeader  string // X-PeerURLs
	serverVer   version
	minVer      version
	timing      timing
	streamRT    *http.Transport // 5 s read/write timeouts, no reuse
	pipelineRT  *http.Transport // no timeouts, idle reuse
	rep         *reporter
	mismatchLog *logLimiter
	removedOnce sync.Once
	// ctx is cancelled when Stop begins; pipeline requests step their
	// message into raft under it. (Not the request's context: a peer
	// listener's per-read deadline cancels that after 5 s of a silent
	// client, which says nothing about the sender.)
	ctx    context.Context
	cancel context.CancelFunc

	// snaps counts snapshot uploads in flight; Stop waits for them.
	snaps sync.WaitGroup

	mu      sync.RWMutex
	stopped bool               // protected by mu
	peers   map[uint64]*peer   // protected by mu
	remotes map[uint64]*remote // protected by mu
}

// New returns a running Transport with no peers.
func New(cfg Config) (*Transport, error) { return newTransport(cfg, defaultTiming) }

func newTransport(cfg Config, tm timing) (*Transport, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	sv, _ := parseVersion(cfg.ServerVersion)
	mv, _ := parseVersion(cfg.MinClusterVersion)
	t := &Transport{
		cfg:         cfg,
		lg:          cfg.Logger,
		localHex:    types.ID(cfg.LocalID).String(),
		clusterHex:  types.ID(cfg.ClusterID).String(),
		urlsHeader:  peerURLsHeader(cfg.LocalURLs),
		serverVer:   sv,
		minVer:      mv,
		timing:      tm,
		streamRT:    newRoundTripper(cfg.DialTimeout, cfg.TLSClient, tm.streamIdle, tm.streamIdle, -1),
		pipelineRT:  newRoundTripper(cfg.DialTimeout, cfg.TLSClient, 0, 0, 1024),
		rep:         newReporter(cfg.Raft),
		mismatchLog: newLogLimiter(10 * time.Second),
		peers:       make(map[uint64]*peer),
		remotes:     make(map[uint64]*remote),
		ctx:         ctx,
		cancel:      cancel,
	}
	return t, nil
}

// parseURLs checks peer URLs as etcd does (http/https host:port without a
// path); the result is sorted.
func parseURLs(us []string) (types.URLs, error) {
	urls, err := types.NewURLs(us)
	if err != nil {
		return nil, fmt.Errorf("peer URLs %v: %w", us, err)
	}
	return urls, nil
}

// AddPeer starts talking to member id at urls: its stream readers dial at
// once, its pipeline and stream writers wait for traffic. Adding a known
// peer does nothing. Invalid URLs are logged and the peer is not added
// (etcd panics).
func (t *Transport) AddPeer(id uint64, urls []string) {
	us, err := parseURLs(urls)
	if err != nil {
		t.lg.Error("failed to add remote peer", zap.String("remote-peer-id", types.ID(id).String()), zap.Error(err))
		return
	}
	t.mu.Lock()
	if t.stopped || t.peers[id] != nil || id == t.cfg.LocalID {
		t.mu.Unlock()
		return
	}
	r := t.remotes[id]
	delete(t.remotes, id)
	t.peers[id] = startPeer(t, id, us)
	t.mu.Unlock()
	if r != nil {
		r.stop() // the peer's own pipeline takes over
	}
	t.lg.Info("added remote peer",
		zap.String("local-member-id", t.localHex),
		zap.String("remote-peer-id", types.ID(id).String()),
		zap.Strings("remote-peer-urls", us.StringSlice()))
}

// RemovePeer stops everything running for member id and waits for it.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p, r := t.peers[id], t.remotes[id]
	delete(t.peers, id)
	delete(t.remotes, id)
	t.mu.Unlock()
	if r != nil {
		r.stop()
	}
	if p == nil {
		t.lg.Warn("skipped removing already removed peer",
			zap.String("local-member-id", t.localHex), zap.String("removed-remote-peer-id", types.ID(id).String()))
		return
	}
	p.stop()
	t.lg.Info("removed remote peer",
		zap.String("local-member-id", t.localHex), zap.String("removed-remote-peer-id", types.ID(id).String()))
}

// UpdatePeer replaces member id's URLs; streams already up stay up.
func (t *Transport) UpdatePeer(id uint64, urls []string) {
	us, err := parseURLs(urls)
	if err != nil {
		t.lg.Error("failed to update remote peer", zap.String("remote-peer-id", types.ID(id).String()), zap.Error(err))
		return
	}
	t.mu.RLock()
	p := t.peers[id]
	t.mu.RUnlock()
	if p == nil {
		return
	}
	p.update(us)
	t.lg.Info("updated remote peer",
		zap.String("local-member-id", t.localHex),
		zap.String("updated-remote-peer-id", types.ID(id).String()),
		zap.Strings("updated-remote-peer-urls", us.StringSlice()))
}

// addRemote registers a pipeline-only remote for a sender we do not know
// (spec 3.1 step 7, 4). Nothing happens for known or removed members, for
// ourselves, for bad URLs, or once stopped.
func (t *Transport) addRemote(id uint64, urls []string) {
	if id == t.cfg.LocalID || t.cfg.Raft.IsIDRemoved(id) {
		return
	}
	t.mu.RLock()
	known := t.stopped || t.peers[id] != nil || t.remotes[id] != nil
	t.mu.RUnlock()
	if known {
		return
	}
	us, err := parseURLs(urls)
	if err != nil {
		t.lg.Warn("ignored remote peer with bad peer URLs", zap.String("remote-peer-id", types.ID(id).String()), zap.Error(err))
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped || t.peers[id] != nil || t.remotes[id] != nil {
		return
	}
	t.remotes[id] = startRemote(t, id, us)
	t.lg.Info("added new remote peer",
		zap.String("local-member-id", t.localHex),
		zap.String("remote-peer-id", types.ID(id).String()),
		zap.Strings("remote-peer-urls", us.StringSlice()))
}

func (t *Transport) peer(id uint64) *peer {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.peers[id]
}

// Send queues each message for its peer (spec 3.4's choice of channel)
// and returns at once. Messages to unknown members are dropped; a full
// queue drops the message and reports the peer unreachable (from another
// goroutine). A MsgSnap is refused (raft hears SnapshotFailure and
// unreachable): it must travel with its database through SendSnapshot.
//
// Ownership: Send keeps the messages (and their entries) until they are
// written; the caller must not modify them afterwards (raft never does).
func (t *Transport) Send(msgs []raftpb.Message) {
	for i := range msgs {
		m := msgs[i]
		if m.To == 0 {
			continue
		}
		if m.Type == raftpb.MsgSnap {
			t.refuseSnapshot(&m)
			continue
		}
		t.mu.RLock()
		p, r := t.peers[m.To], t.remotes[m.To]
		t.mu.RUnlock()
		switch {
		case p != nil:
			p.send(m)
		case r != nil:
			r.send(m)
		default:
			t.lg.Debug("ignored message send request; unknown remote peer target",
				zap.String("type", m.Type.String()), zap.String("unknown-target-peer-id", types.ID(m.To).String()))
		}
	}
}

func (t *Transport) refuseSnapshot(m *raftpb.Message) {
	t.lg.Warn("refused a snapshot message given to Send: snapshots travel with their database through SendSnapshot",
		zap.String("local-member-id", t.localHex),
		zap.String("remote-peer-id", types.ID(m.To).String()),
		zap.Uint64("snapshot-index", m.Snapshot.Metadata.Index),
		zap.Uint64("snapshot-term", m.Snapshot.Metadata.Term))
	t.rep.snapshot(m.To, raft.SnapshotFailure)
	t.rep.unreachable(m.To)
}

// ActiveSince is when member id's peer became active (spec 6.2), or the
// zero time when it is inactive or unknown.
func (t *Transport) ActiveSince(id uint64) time.Time {
	if p := t.peer(id); p != nil {
		return p.status.activeSince()
	}
	return time.Time{}
}

// PeerRefused reports whether the last dial to member id was refused
// outright (ECONNREFUSED: nothing listens at its peer URL, so its process
// is gone, not merely slow or cut off) with no stream established since.
// raftnode uses it to start an election as soon as raft allows one rather
// than after its randomized timeout.
func (t *Transport) PeerRefused(id uint64) bool {
	p := t.peer(id)
	return p != nil && p.refused.Load()
}

// memberRemoved reports, once, that a peer told us we were removed.
func (t *Transport) memberRemoved(err error) {
	t.removedOnce.Do(func() {
		t.lg.Error("the member has been permanently removed from the cluster; the data-dir used by this member must be removed",
			zap.String("local-member-id", t.localHex), zap.Error(err))
		if t.cfg.OnRemoved != nil {
			t.cfg.OnRemoved(err)
		}
	})
}

// Stop closes every stream and stops every goroutine the transport
// started, waiting for them. Afterwards Send drops everything, AddPeer
// does nothing, and stream requests are answered 404 as from an unknown
// sender. The HTTP server serving Handler is the caller's to close, after
// Stop (its stream handlers return once Stop released them).
//
// Stop waits for a report in progress, so it must not be called from a
// goroutine that Raft.ReportUnreachable or ReportSnapshot waits for (with
// raftnode: not from its loop, e.g. not from inside Send's caller).
func (t *Transport) Stop() {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	t.stopped = true
	t.cancel()
	peers, remotes := t.peers, t.remotes
	t.peers, t.remotes = map[uint64]*peer{}, map[uint64]*remote{}
	t.mu.Unlock()

	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Go(p.stop)
	}
	for _, r := range remotes {
		wg.Go(r.stop)
	}
	wg.Wait()
	t.snaps.Wait()
	t.rep.close()
	t.streamRT.CloseIdleConnections()
	t.pipelineRT.CloseIdleConnections()
}

// logLimiter lets a repeated log line through at most once per interval
// per key, counting what it held back. Safe for concurrent use.
type logLimiter struct {
	every time.Duration
	mu    sync.Mutex
	seen  map[string]*limitState // protected by mu
}

type limitState struct {
	last       time.Time
	suppressed int
}

func newLogLimiter(every time.Duration) *logLimiter {
	return &logLimiter{every: every, seen: make(map[string]*limitState)}
}

// log calls emit (with the number of lines held back since the last one)
// unless key was logged less than an interval ago.
func (l *logLimiter) log(key string, emit func(suppressed int)) {
	l.mu.Lock()
	s := l.seen[key]
	now := time.Now()
	if s == nil {
		if len(l.seen) > 1024 { // bounded: forget everything rather than grow
			clear(l.seen)
		}
		s = &limitState{}
		l.seen[key] = s
	} else if now.Sub(s.last) < l.every {
		s.suppressed++
		l.mu.Unlock()
		return
	}
	n := s.suppressed
	s.last, s.suppressed = now, 0
	l.mu.Unlock()
	emit(n)
}
