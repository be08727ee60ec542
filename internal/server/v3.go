package server

import (
	"context"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/internal/failpoint"
	"github.com/cairnkv/cairn/internal/txn"
)

// Rev is the current revision of the key-value store.
func (s *Server) Rev() int64 { return s.kv.Rev() }

// Range serves a range request: serializable ones from local state at
// once, linearizable ones after a ReadIndex round confirms this member is
// up to date.
func (s *Server) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if !r.Serializable && !failpoint.On(failpoint.ReadLocal) { // test-only hook: no ReadIndex
		if err := s.LinearizableReadNotify(ctx); err != nil {
			return nil, err
		}
	}
	if !r.Serializable && r.Revision != 0 && failpoint.On(failpoint.RangeIgnoresRev) { // test-only hook
		current := *r
		current.Revision = 0
		r = &current
	}
	return s.kvRange(ctx, r)
}

// Put proposes a put and returns its result once applied.
func (s *Server) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if !s.quotaAvailable(putCost(r)) {
		return nil, s.refuseOverQuota(ctx)
	}
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{Put: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.PutResponse), nil
}

// DeleteRange proposes a delete and returns its result once applied.
func (s *Server) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{DeleteRange: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.DeleteRangeResponse), nil
}

// Txn runs a read-only txn locally (after a ReadIndex unless every range
// in it is serializable) and proposes any other txn through raft.
func (s *Server) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if txn.IsReadOnly(r) {
		if !isTxnSerializable(r) {
			if err := s.LinearizableReadNotify(ctx); err != nil {
				return nil, err
			}
		}
		return s.kvReadTxn(ctx, r)
	}
	if !s.quotaAvailable(txnCost(r)) {
		return nil, s.refuseOverQuota(ctx)
	}
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{Txn: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.TxnResponse), nil
}

// Compact proposes a compaction; with Physical it also waits until the
// compacted revisions are removed from the backend.
func (s *Server) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	res, err := s.proposeResult(ctx, &pb.InternalRaftRequest{Compaction: r})
	if err != nil {
		return nil, err
	}
	if r.Physical && res.physical != nil {
		select {
		case <-res.physical:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.stopping:
			return nil, ErrStopped
		}
	}
	resp := res.resp.(*pb.CompactionResponse)
	return resp, nil
}

func isTxnSerializable(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if rr := op.GetRequestRange(); rr != nil && !rr.Serializable {
				return false
			}
			if t := op.GetRequestTxn(); t != nil && !isTxnSerializable(t) {
				return false
			}
		}
	}
	return true
}

// Status reports the member's state.
func (s *Server) Status(ctx context.Context) (*pb.StatusResponse, error) {
	resp := &pb.StatusResponse{
		Version:          Version,
		DbSize:           s.be.Size(),
		DbSizeInUse:      s.be.SizeInUse(),
		Leader:           s.Leader(),
		RaftIndex:        s.CommittedIndex(),
		RaftTerm:         s.Term(),
		RaftAppliedIndex: s.AppliedIndex(),
		StorageVersion:   StorageVersion,
		DbSizeQuota:      s.cfg.Quota(),
		DowngradeInfo:    &pb.DowngradeInfo{},
	}
	if m := s.cl.Member(s.ID()); m != nil {
		resp.IsLearner = m.IsLearner
	}
	for _, a := range s.Alarms() {
		resp.Errors = append(resp.Errors, a.String())
	}
	return resp, nil
}

// Alarms lists the active alarms as applied locally.
func (s *Server) Alarms() []*pb.AlarmMember { return s.alarms.List() }

// Alarm runs an alarm request through raft, as etcd does (listing too, so
// the logs of etcd and cairn members stay alike).
func (s *Server) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AlarmResponse), nil
}

// ClusterVersion is the decided cluster version ("" if not yet).
func (s *Server) ClusterVersion() string { return s.cl.Version() }

// Defragment rewrites the backend file compactly.
func (s *Server) Defragment(ctx context.Context) error { return s.be.Defrag() }

// SnapshotDB returns a consistent copy of the backend and its size.
func (s *Server) SnapshotDB() (io.ReadCloser, int64, error) {
	if err := s.be.ForceCommit(); err != nil {
		return nil, 0, err
	}
	sn, err := s.be.Snapshot()
	if err != nil {
		return nil, 0, err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := sn.WriteTo(pw)
		sn.Close()
		pw.CloseWithError(err)
	}()
	return pr, sn.Size(), nil
}

// MemberList lists the members; linearizable waits for a ReadIndex first.
func (s *Server) MemberList(ctx context.Context, linearizable bool) ([]*pb.Member, error) {
	if linearizable {
		if err := s.LinearizableReadNotify(ctx); err != nil {
			return nil, err
		}
	}
	var out []*pb.Member
	for _, m := range s.cl.Members() {
		out = append(out, &pb.Member{
			ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner,
		})
	}
	return out, nil
}

// proposeResult is propose returning the whole apply result.
func (s *Server) proposeResult(ctx context.Context, req *pb.InternalRaftRequest) (applyResult, error) {
	res, err := s.proposeRaw(ctx, req)
	if err != nil {
		return res, err
	}
	return res, res.err
}
