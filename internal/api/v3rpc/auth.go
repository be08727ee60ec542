package v3rpc

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// authServer answers for a store without authentication, as etcd does
// while auth is disabled: clients that send credentials are told auth is
// not enabled and go on without a token. Enabling auth lands with the auth
// work; until then it is refused.
type authServer struct {
	pb.UnimplementedAuthServer
	hdr header
}

func (s *authServer) Authenticate(context.Context, *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	return nil, rpctypes.ErrGRPCAuthNotEnabled
}

func (s *authServer) AuthStatus(context.Context, *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	resp := &pb.AuthStatusResponse{Enabled: false}
	s.hdr.fill(&resp.Header)
	return resp, nil
}
