package server

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/internal/membership"
)

// The Cluster service's view of reconfiguration: the same operations with
// etcd's protobuf member records.

// MemberAdd adds a member (see AddMember) and returns it as etcd's
// MemberAdd response shows it (ID, peer URLs, learner flag) with the
// member set after the change.
func (s *Server) MemberAdd(ctx context.Context, peerURLs []string, learner bool) (*pb.Member, []*pb.Member, error) {
	m, ms, err := s.AddMember(ctx, peerURLs, learner)
	if err != nil {
		return nil, nil, err
	}
	return &pb.Member{ID: m.ID, PeerURLs: m.PeerURLs, IsLearner: m.IsLearner}, pbMembers(ms), nil
}

// MemberRemove removes member id (see RemoveMember).
func (s *Server) MemberRemove(ctx context.Context, id uint64) ([]*pb.Member, error) {
	ms, err := s.RemoveMember(ctx, id)
	return pbMembers(ms), err
}

// MemberUpdate replaces member id's peer URLs (see UpdateMember).
func (s *Server) MemberUpdate(ctx context.Context, id uint64, peerURLs []string) ([]*pb.Member, error) {
	ms, err := s.UpdateMember(ctx, id, peerURLs)
	return pbMembers(ms), err
}

// MemberPromote makes learner id a voter (see PromoteMember).
func (s *Server) MemberPromote(ctx context.Context, id uint64) ([]*pb.Member, error) {
	ms, err := s.PromoteMember(ctx, id)
	return pbMembers(ms), err
}

// IsLearner reports whether this member is a learner, which serves only
// Status, serializable ranges and snapshots.
func (s *Server) IsLearner() bool { return s.cl.LocalIsLearner() }

func pbMembers(ms []*membership.Member) []*pb.Member {
	if ms == nil {
		return nil
	}
	out := make([]*pb.Member, len(ms))
	for i, m := range ms {
		out[i] = &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}
	}
	return out
}
