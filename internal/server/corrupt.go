package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/mvcc"
)

// Corruption checks, as etcd 3.6 runs them: members compare etcd's HashKV
// at one revision through the peer endpoint /members/hashkv.
//   - the initial check (InitialCorruptCheck) refuses to start a member
//     whose hash differs from a peer's at the same compaction;
//   - the periodic check (--corrupt-check-time), run by the leader, raises
//     a CORRUPT alarm against a follower that is ahead of the leader or
//     whose hash differs at the same compaction;
//   - the compaction hash check (CompactHashCheck, every
//     --compact-hash-check-time), run by the leader, compares the hashes
//     every member computed at its compactions, and raises the alarm against
//     members outside the majority.
//
// A CORRUPT alarm makes every member refuse writes (apply.ErrCorrupt).

// ErrCorruption is returned by the initial check when this member's data
// differs from a peer's.
var ErrCorruption = errors.New("found data inconsistency with peers")

// peerHash is one peer's answer to /members/hashkv.
type peerHash struct {
	id   uint64
	resp *pb.HashKVResponse
	err  error
}

// peerHashes asks every other member for its HashKV at rev.
func (s *Server) peerHashes(ctx context.Context, rev int64) []peerHash {
	var out []peerHash
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range s.cl.Members() {
		if m.ID == s.ID() {
			continue
		}
		wg.Go(func() {
			resp, err := s.fetchPeerHash(ctx, m.PeerURLs, rev)
			mu.Lock()
			out = append(out, peerHash{id: m.ID, resp: resp, err: err})
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// fetchPeerHash tries the peer's URLs in turn.
func (s *Server) fetchPeerHash(ctx context.Context, urls []string, rev int64) (*pb.HashKVResponse, error) {
	body, err := json.Marshal(&pb.HashKVRequest{Revision: rev})
	if err != nil {
		return nil, err
	}
	var lastErr error = errors.New("no peer URL")
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(u, "/")+"/members/hashkv", bytes.NewReader(body))
		if err != nil {
			lastErr = err
			continue
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Etcd-Cluster-ID", membership.FormatID(s.ClusterID()))
		resp, err := s.peerClient.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			lastErr = err
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
		}
		var hr pb.HashKVResponse
		if err := json.Unmarshal(b, &hr); err != nil {
			return nil, fmt.Errorf("decode hashkv answer: %w", err)
		}
		return &hr, nil
	}
	return nil, lastErr
}

// HashKVHandler serves GET /members/hashkv on the peer port (a JSON
// HashKVRequest in the body; etcd's answers and errors).
func (s *Server) HashKVHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		if cid := r.Header.Get("X-Etcd-Cluster-ID"); cid != "" && cid != membership.FormatID(s.ClusterID()) {
			http.Error(w, "cluster ID mismatch", http.StatusPreconditionFailed)
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "error reading body", http.StatusBadRequest)
			return
		}
		var req pb.HashKVRequest
		if err := json.Unmarshal(b, &req); err != nil {
			http.Error(w, "error unmarshalling request", http.StatusBadRequest)
			return
		}
		h, cur, err := s.kv.HashByRev(req.Revision)
		switch {
		case errors.Is(err, mvcc.ErrCompacted):
			http.Error(w, "mvcc: required revision has been compacted", http.StatusBadRequest)
			return
		case errors.Is(err, mvcc.ErrFutureRev):
			http.Error(w, "mvcc: required revision is a future revision", http.StatusBadRequest)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out, err := json.Marshal(&pb.HashKVResponse{
			Header: &pb.ResponseHeader{Revision: cur}, Hash: h.Hash,
			CompactRevision: h.CompactRevision, HashRevision: h.Revision,
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-Etcd-Cluster-ID", membership.FormatID(s.ClusterID()))
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	})
}

// InitialCorruptCheck compares this member's HashKV with every reachable
// peer's at this member's revision, before it serves clients. A peer that
// cannot answer (down, behind, ahead of a compaction) is logged and
// skipped; a different hash at the same compaction is an error.
func (s *Server) InitialCorruptCheck(ctx context.Context) error {
	lg := s.lg.With(zap.String("local-member-id", membership.FormatID(s.ID())))
	lg.Info("starting initial corruption check", zap.Duration("timeout", s.cfg.RequestTimeout()))
	// The member set of a restart is rebuilt by replaying the WAL: compare
	// only once what was committed before the stop is applied, or the check
	// may find no peers to ask and pass without comparing anything.
	select {
	case <-s.applied.Wait(s.bootCommit):
	case <-ctx.Done():
		return fmt.Errorf("initial corruption check: waiting to apply the committed log: %w", ctx.Err())
	case <-s.stopping:
		return ErrStopped
	}
	h, rev, err := s.kv.HashByRev(0)
	if err != nil {
		return fmt.Errorf("initial corruption check: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout())
	defer cancel()
	mismatch := 0
	for _, p := range s.peerHashes(ctx, rev) {
		peer := zap.String("remote-peer-id", membership.FormatID(p.id))
		switch {
		case p.err != nil:
			lg.Warn("cannot fetch hash from remote peer", peer, zap.Int64("revision", rev), zap.Error(p.err))
		case p.resp.Hash == h.Hash:
		case p.resp.CompactRevision == h.CompactRevision:
			lg.Warn("found different hash values from remote peer", peer,
				zap.Int64("local-member-revision", rev), zap.Int64("local-member-compact-revision", h.CompactRevision),
				zap.Uint32("local-member-hash", h.Hash), zap.Int64("remote-peer-revision", p.resp.Header.GetRevision()),
				zap.Int64("remote-peer-compact-revision", p.resp.CompactRevision), zap.Uint32("remote-peer-hash", p.resp.Hash))
			mismatch++
		default:
			lg.Warn("found different compact revision values from remote peer", peer,
				zap.Int64("local-member-compact-revision", h.CompactRevision),
				zap.Int64("remote-peer-compact-revision", p.resp.CompactRevision))
		}
	}
	if mismatch > 0 {
		return fmt.Errorf("%s %w", membership.FormatID(s.ID()), ErrCorruption)
	}
	lg.Info("initial corruption checking passed; no corruption")
	return nil
}

// periodicCorruptCheck is one round of the leader's --corrupt-check-time
// check.
func (s *Server) periodicCorruptCheck(ctx context.Context) {
	h, rev, err := s.kv.HashByRev(0)
	if err != nil {
		s.lg.Warn("failed to compute hash for corruption check", zap.Error(err))
		return
	}
	peers := s.peerHashes(ctx, rev)
	h2, rev2, err := s.kv.HashByRev(0)
	if err != nil {
		return
	}
	alarmed := false
	alarm := func(id uint64, why string, fields ...zap.Field) {
		s.lg.Warn(why, append(fields, zap.String("suspect-member-id", membership.FormatID(id)))...)
		if !alarmed {
			alarmed = true
			s.raiseCorruptAlarm(ctx, id)
		}
	}
	if h2.Hash != h.Hash && rev2 == rev && h2.CompactRevision == h.CompactRevision {
		alarm(s.ID(), "found hash mismatch", zap.Int64("revision", rev), zap.Uint32("hash-1", h.Hash), zap.Uint32("hash-2", h2.Hash))
	}
	checked := 0
	for _, p := range peers {
		if p.resp == nil {
			continue
		}
		checked++
		switch {
		case p.resp.Header.GetRevision() > rev2:
			alarm(p.id, "revision from follower must be less than or equal to leader's",
				zap.Int64("leader-revision", rev2), zap.Int64("follower-revision", p.resp.Header.GetRevision()))
		case p.resp.CompactRevision > h2.CompactRevision:
			alarm(p.id, "compact revision from follower must be less than or equal to leader's",
				zap.Int64("leader-compact-revision", h2.CompactRevision), zap.Int64("follower-compact-revision", p.resp.CompactRevision))
		case p.resp.CompactRevision == h.CompactRevision && p.resp.Hash != h.Hash:
			alarm(p.id, "same compact revision then hashes must match",
				zap.Int64("compact-revision", h.CompactRevision), zap.Uint32("leader-hash", h.Hash), zap.Uint32("follower-hash", p.resp.Hash))
		}
	}
	s.lg.Info("finished peer corruption check", zap.Int("number-of-peers-checked", checked))
}

// compactHashCheck is one round of the leader's CompactHashCheck: the
// hashes recorded at compactions not yet checked are compared, newest
// first, until one is found equal on every member.
func (s *Server) compactHashCheck(ctx context.Context) {
	hashes := s.kv.CompactionHashes()
	checkedHashes := 0
	for i := len(hashes) - 1; i >= 0; i-- {
		h := hashes[i]
		if h.Revision <= s.lastCompactHashChecked {
			break
		}
		checkedHashes++
		peers := s.peerHashes(ctx, h.Revision)
		if len(peers) == 0 {
			continue
		}
		if s.checkCompactionHash(ctx, h, peers) {
			break
		}
	}
	s.lg.Info("finished compaction hash check", zap.Int("number-of-hashes-checked", checkedHashes))
}

// checkCompactionHash groups the members by the hash they computed at the
// compaction of h and alarms against the minority. It reports whether every
// peer agreed (h then need not be checked again).
func (s *Server) checkCompactionHash(ctx context.Context, h mvcc.KeyValueHash, peers []peerHash) bool {
	byHash := map[uint32][]uint64{h.Hash: {s.ID()}}
	checked := 0
	for _, p := range peers {
		if p.resp == nil || p.resp.CompactRevision != h.CompactRevision {
			s.lg.Warn("skipped peer's hash", zap.String("peer-id", membership.FormatID(p.id)), zap.Int64("revision", h.Revision), zap.Error(p.err))
			continue
		}
		checked++
		byHash[p.resp.Hash] = append(byHash[p.resp.Hash], p.id)
	}
	if len(byHash) == 1 {
		if checked == len(peers) {
			s.lg.Info("successfully checked hash on all peers", zap.Int("number-of-peers-checked", checked), zap.Int64("revision", h.Revision))
			s.lastCompactHashChecked = h.Revision
			return true
		}
		s.lg.Warn("skipped revision in compaction hash check; was not able to check all peers",
			zap.Int("number-of-peers-checked", checked), zap.Int("number-of-peers", len(peers)), zap.Int64("revision", h.Revision))
		return false
	}
	quorum := (len(peers)+1)/2 + 1
	majority := uint32(0)
	found := false
	for hash, ids := range byHash {
		if len(ids) >= quorum {
			majority, found = hash, true
			break
		}
	}
	if !found {
		s.lg.Error("detected compaction hash mismatch but cannot identify the corrupted members; raising the alarm for the whole cluster (member ID 0)")
		s.raiseCorruptAlarm(ctx, 0)
	}
	for hash, ids := range byHash {
		if found && hash == majority {
			continue
		}
		s.lg.Error("detected compaction hash mismatch", zap.String("leader-id", membership.FormatID(s.ID())),
			zap.Uint32("leader-hash", h.Hash), zap.Int64("compact-revision", h.CompactRevision),
			zap.Uint32("peer-hash", hash), zap.Uint64s("peer-ids", ids), zap.Bool("quorum-exist", found))
		if found {
			for _, id := range ids {
				s.raiseCorruptAlarm(ctx, id)
			}
		}
	}
	return false
}

// raiseCorruptAlarm activates a CORRUPT alarm against member id through
// raft.
func (s *Server) raiseCorruptAlarm(ctx context.Context, id uint64) {
	_, err := s.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: id, Alarm: pb.AlarmType_CORRUPT})
	if err != nil {
		s.lg.Warn("failed to raise corruption alarm", zap.String("member-id", membership.FormatID(id)), zap.Error(err))
	}
}

// runLeaderCheck runs check every period while this member leads, until
// the server stops.
func (s *Server) runLeaderCheck(name string, period time.Duration, check func(ctx context.Context)) {
	s.lg.Info("enabled "+name, zap.Duration("interval", period))
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
		}
		if !s.node.IsLeader() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout())
		check(ctx)
		cancel()
	}
}

// startCorruptionChecks starts the leader's periodic checks the config
// asks for.
func (s *Server) startCorruptionChecks() {
	if d := s.cfg.CorruptCheckTime; d > 0 {
		s.bg.Go(func() { s.runLeaderCheck("corruption checking", d, s.periodicCorruptCheck) })
	}
	if s.cfg.CompactHashCheck && s.cfg.CompactHashCheckTime > 0 {
		s.bg.Go(func() { s.runLeaderCheck("compaction hash check", s.cfg.CompactHashCheckTime, s.compactHashCheck) })
	}
}
