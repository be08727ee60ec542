package v3rpc

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
)

// snapshotChunk is the blob size of each Snapshot stream message.
const snapshotChunk = 32 * 1024

type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	lg             *zap.Logger
	hdr            header
	m              Member
	storageVersion string
}

func (s *maintenanceServer) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	resp, err := s.m.Status(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(&resp.Header)
	return resp, nil
}

func (s *maintenanceServer) Hash(ctx context.Context, _ *pb.HashRequest) (*pb.HashResponse, error) {
	resp, err := s.m.Hash(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(&resp.Header)
	return resp, nil
}

func (s *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	resp, err := s.m.HashKV(ctx, r.Revision)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(&resp.Header)
	return resp, nil
}

func (s *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	resp, err := s.m.Alarm(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(&resp.Header)
	return resp, nil
}

func (s *maintenanceServer) Defragment(ctx context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	s.lg.Info("starting defragment")
	if err := s.m.Defragment(ctx); err != nil {
		s.lg.Warn("failed to defragment", zap.Error(err))
		return nil, toGRPCError(err)
	}
	s.lg.Info("finished defragment")
	return &pb.DefragmentResponse{}, nil // no header, as etcd 3.6's
}

// Snapshot streams the backend, then one last message whose blob is the
// SHA-256 of every byte sent, which etcdutl checks on restore. No message
// carries a header, as in etcd 3.6.
func (s *maintenanceServer) Snapshot(_ *pb.SnapshotRequest, srv pb.Maintenance_SnapshotServer) error {
	rc, size, err := s.m.SnapshotDB()
	if err != nil {
		return toGRPCError(err)
	}
	defer rc.Close()
	s.lg.Info("sending database snapshot to client", zap.Int64("total-bytes", size))
	h := sha256.New()
	buf := make([]byte, snapshotChunk)
	remaining := uint64(size)
	for remaining > 0 {
		n, err := io.ReadFull(rc, buf[:min(uint64(len(buf)), remaining)])
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return toGRPCError(err)
		}
		remaining -= uint64(n)
		h.Write(buf[:n])
		resp := &pb.SnapshotResponse{RemainingBytes: remaining, Blob: buf[:n], Version: s.storageVersion}
		if err := srv.Send(resp); err != nil {
			return err
		}
	}
	resp := &pb.SnapshotResponse{Blob: h.Sum(nil), Version: s.storageVersion}
	if err := srv.Send(resp); err != nil {
		return err
	}
	s.lg.Info("sent database snapshot to client", zap.Int64("total-bytes", size))
	return nil
}

// MoveLeader hands leadership to a voting member, as etcd's: only the
// leader takes the request; the answer is an empty response (no header).
func (s *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if s.m.ID() != s.m.Leader() {
		return nil, rpctypes.ErrGRPCNotLeader
	}
	if err := s.m.MoveLeader(ctx, r.TargetID); err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MoveLeaderResponse{}, nil
}

type clusterServer struct {
	pb.UnimplementedClusterServer
	hdr header
	m   Member
}

func (s *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	ms, err := s.m.MemberList(ctx, r.Linearizable)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.MemberListResponse{Members: ms}
	s.hdr.fillNoRev(&resp.Header)
	return resp, nil
}
