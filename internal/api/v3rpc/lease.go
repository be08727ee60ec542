package v3rpc

import (
	"context"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/cairnkv/cairn/internal/lease"
	"github.com/cairnkv/cairn/internal/server"
)

// LeaseMember is what the Lease service needs of a member, beyond Member.
// A Member that implements it serves leases; one that does not answers
// Unimplemented (tests' fakes).
type LeaseMember interface {
	LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error)
	LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error)
	// LeaseRenew renews lease id (on the leader, or forwarded to it) and
	// returns its TTL.
	LeaseRenew(ctx context.Context, id int64) (int64, error)
	LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error)
	LeaseLeases(ctx context.Context) (*pb.LeaseLeasesResponse, error)
}

var _ LeaseMember = (*server.Server)(nil)

// registerLease registers the Lease service: etcd's when m serves leases.
func registerLease(gs *grpc.Server, m Member, hdr header, lg *zap.Logger) {
	lm, ok := m.(LeaseMember)
	if !ok {
		pb.RegisterLeaseServer(gs, &pb.UnimplementedLeaseServer{})
		return
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	pb.RegisterLeaseServer(gs, &leaseServer{lg: lg, hdr: hdr, m: lm})
}

type leaseServer struct {
	pb.UnimplementedLeaseServer
	lg  *zap.Logger
	hdr header
	m   LeaseMember
}

// leaseErrors are the lessor's and the lease shell's errors in etcd's gRPC
// form; others go through toGRPCError. lease.ErrNotPrimary has no gRPC
// error in etcd and reaches clients as codes.Unknown with its text.
var leaseErrors = []struct {
	err  error
	grpc error
}{
	{lease.ErrNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{lease.ErrExists, rpctypes.ErrGRPCLeaseExist},
	{lease.ErrTTLTooLarge, rpctypes.ErrGRPCLeaseTTLTooLarge},
	{server.ErrLeaderChanged, rpctypes.ErrGRPCLeaderChanged},
	{server.ErrTimeoutWaitAppliedIndex, rpctypes.ErrGRPCTimeoutWaitAppliedIndex},
}

func toLeaseGRPCError(err error) error {
	for _, e := range leaseErrors {
		if errors.Is(err, e.err) {
			return e.grpc
		}
	}
	if errors.Is(err, lease.ErrNotPrimary) {
		return toGRPCError(lease.ErrNotPrimary)
	}
	return toGRPCError(err)
}

func (s *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	resp, err := s.m.LeaseGrant(ctx, r)
	if err != nil {
		return nil, toLeaseGRPCError(err)
	}
	s.hdr.fill(&resp.Header)
	return resp, nil
}

func (s *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	resp, err := s.m.LeaseRevoke(ctx, r)
	if err != nil {
		return nil, toLeaseGRPCError(err)
	}
	s.hdr.fill(&resp.Header)
	return resp, nil
}

// LeaseTimeToLive answers an unknown lease with TTL -1, not an error, as
// etcd does.
func (s *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	resp, err := s.m.LeaseTimeToLive(ctx, r)
	switch {
	case errors.Is(err, lease.ErrNotFound):
		resp = &pb.LeaseTimeToLiveResponse{ID: r.ID, TTL: -1}
	case err != nil:
		return nil, toLeaseGRPCError(err)
	}
	s.hdr.fill(&resp.Header)
	return resp, nil
}

func (s *leaseServer) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	resp, err := s.m.LeaseLeases(ctx)
	if err != nil {
		return nil, toLeaseGRPCError(err)
	}
	s.hdr.fill(&resp.Header)
	return resp, nil
}

// LeaseKeepAlive renews the lease of every request on the stream and
// answers each with its TTL (0 for a lease that is gone). When the stream's
// context ends first, etcd's answer is "no leader" (the only server-side
// cancellation); a client that cancelled never sees it.
func (s *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	errc := make(chan error, 1)
	go func() { errc <- s.keepAlive(stream) }()
	select {
	case err := <-errc:
		return err
	case <-stream.Context().Done():
		err := stream.Context().Err()
		if errors.Is(err, context.Canceled) {
			return rpctypes.ErrGRPCNoLeader
		}
		return err
	}
}

func (s *leaseServer) keepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			s.lg.Debug("failed to receive lease keepalive request from gRPC stream", zap.Error(err))
			return err
		}
		// The header is taken before the renewal, so its revision is never
		// after one at which the lease was revoked.
		resp := &pb.LeaseKeepAliveResponse{ID: req.ID}
		s.hdr.fill(&resp.Header)
		ttl, err := s.m.LeaseRenew(stream.Context(), req.ID)
		switch {
		case errors.Is(err, lease.ErrNotFound):
			ttl = 0
		case err != nil:
			return toLeaseGRPCError(err)
		}
		resp.TTL = ttl
		if err := stream.Send(resp); err != nil {
			s.lg.Debug("failed to send lease keepalive response to gRPC stream", zap.Error(err))
			return err
		}
	}
}
