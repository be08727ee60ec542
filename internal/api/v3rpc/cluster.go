package v3rpc

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// The Cluster service's member changes (MemberList is in maintenance.go).
// Each answers with etcd's header (no revision) and the member set after
// the change.

func (s *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	m, ms, err := s.m.MemberAdd(ctx, r.PeerURLs, r.IsLearner)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.MemberAddResponse{Member: m, Members: ms}
	s.hdr.fillNoRev(&resp.Header)
	return resp, nil
}

func (s *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	ms, err := s.m.MemberRemove(ctx, r.ID)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.MemberRemoveResponse{Members: ms}
	s.hdr.fillNoRev(&resp.Header)
	return resp, nil
}

func (s *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	ms, err := s.m.MemberUpdate(ctx, r.ID, r.PeerURLs)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.MemberUpdateResponse{Members: ms}
	s.hdr.fillNoRev(&resp.Header)
	return resp, nil
}

func (s *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	ms, err := s.m.MemberPromote(ctx, r.ID)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.MemberPromoteResponse{Members: ms}
	s.hdr.fillNoRev(&resp.Header)
	return resp, nil
}
