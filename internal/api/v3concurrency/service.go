package v3concurrency

import (
	"context"

	"google.golang.org/grpc"
)

// The gRPC names etcd registers the two services under.
const (
	LockService     = "v3lockpb.Lock"
	ElectionService = "v3electionpb.Election"
)

// LockServer is etcd's v3lockpb.Lock service.
type LockServer interface {
	Lock(context.Context, *LockRequest) (*LockResponse, error)
	Unlock(context.Context, *UnlockRequest) (*UnlockResponse, error)
}

// ElectionServer is etcd's v3electionpb.Election service.
type ElectionServer interface {
	Campaign(context.Context, *CampaignRequest) (*CampaignResponse, error)
	Proclaim(context.Context, *ProclaimRequest) (*ProclaimResponse, error)
	Leader(context.Context, *LeaderRequest) (*LeaderResponse, error)
	Observe(*LeaderRequest, grpc.ServerStreamingServer[LeaderResponse]) error
	Resign(context.Context, *ResignRequest) (*ResignResponse, error)
}

var lockDesc = grpc.ServiceDesc{
	ServiceName: LockService,
	HandlerType: (*LockServer)(nil),
	Methods: []grpc.MethodDesc{
		unary(LockService, "Lock", LockServer.Lock),
		unary(LockService, "Unlock", LockServer.Unlock),
	},
	Metadata: "v3lock.proto",
}

var electionDesc = grpc.ServiceDesc{
	ServiceName: ElectionService,
	HandlerType: (*ElectionServer)(nil),
	Methods: []grpc.MethodDesc{
		unary(ElectionService, "Campaign", ElectionServer.Campaign),
		unary(ElectionService, "Proclaim", ElectionServer.Proclaim),
		unary(ElectionService, "Leader", ElectionServer.Leader),
		unary(ElectionService, "Resign", ElectionServer.Resign),
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Observe",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			req := new(LeaderRequest)
			if err := stream.RecvMsg(req); err != nil {
				return err
			}
			return srv.(ElectionServer).Observe(req, &grpc.GenericServerStream[LeaderRequest, LeaderResponse]{ServerStream: stream})
		},
	}},
	Metadata: "v3election.proto",
}

// unary describes the unary method service/name served by call on the
// registered implementation S, through the server's interceptors.
func unary[S, Req, Resp any](service, name string, call func(S, context.Context, *Req) (*Resp, error)) grpc.MethodDesc {
	full := "/" + service + "/" + name
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			req := new(Req)
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, r any) (any, error) { return call(srv.(S), ctx, r.(*Req)) }
			if ic == nil {
				return h(ctx, req)
			}
			return ic(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, h)
		},
	}
}

// RegisterLock registers the lock service l on s.
func RegisterLock(s grpc.ServiceRegistrar, l LockServer) { s.RegisterService(&lockDesc, l) }

// RegisterElection registers the election service e on s.
func RegisterElection(s grpc.ServiceRegistrar, e ElectionServer) {
	s.RegisterService(&electionDesc, e)
}

// LockClient calls the lock service over a connection (the gateway's, and
// tests').
type LockClient struct{ cc grpc.ClientConnInterface }

// NewLockClient returns a LockClient on cc.
func NewLockClient(cc grpc.ClientConnInterface) LockClient { return LockClient{cc: cc} }

// Lock calls v3lockpb.Lock/Lock.
func (c LockClient) Lock(ctx context.Context, in *LockRequest, opts ...grpc.CallOption) (*LockResponse, error) {
	return invoke[LockResponse](ctx, c.cc, LockService, "Lock", in, opts)
}

// Unlock calls v3lockpb.Lock/Unlock.
func (c LockClient) Unlock(ctx context.Context, in *UnlockRequest, opts ...grpc.CallOption) (*UnlockResponse, error) {
	return invoke[UnlockResponse](ctx, c.cc, LockService, "Unlock", in, opts)
}

// ElectionClient calls the election service over a connection.
type ElectionClient struct{ cc grpc.ClientConnInterface }

// NewElectionClient returns an ElectionClient on cc.
func NewElectionClient(cc grpc.ClientConnInterface) ElectionClient { return ElectionClient{cc: cc} }

// Campaign calls v3electionpb.Election/Campaign.
func (c ElectionClient) Campaign(ctx context.Context, in *CampaignRequest, opts ...grpc.CallOption) (*CampaignResponse, error) {
	return invoke[CampaignResponse](ctx, c.cc, ElectionService, "Campaign", in, opts)
}

// Proclaim calls v3electionpb.Election/Proclaim.
func (c ElectionClient) Proclaim(ctx context.Context, in *ProclaimRequest, opts ...grpc.CallOption) (*ProclaimResponse, error) {
	return invoke[ProclaimResponse](ctx, c.cc, ElectionService, "Proclaim", in, opts)
}

// Leader calls v3electionpb.Election/Leader.
func (c ElectionClient) Leader(ctx context.Context, in *LeaderRequest, opts ...grpc.CallOption) (*LeaderResponse, error) {
	return invoke[LeaderResponse](ctx, c.cc, ElectionService, "Leader", in, opts)
}

// Resign calls v3electionpb.Election/Resign.
func (c ElectionClient) Resign(ctx context.Context, in *ResignRequest, opts ...grpc.CallOption) (*ResignResponse, error) {
	return invoke[ResignResponse](ctx, c.cc, ElectionService, "Resign", in, opts)
}

// Observe calls v3electionpb.Election/Observe: the stream carries the
// leader and each change of it.
func (c ElectionClient) Observe(ctx context.Context, in *LeaderRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[LeaderResponse], error) {
	stream, err := c.cc.NewStream(ctx, &electionDesc.Streams[0], "/"+ElectionService+"/Observe", opts...)
	if err != nil {
		return nil, err
	}
	s := &grpc.GenericClientStream[LeaderRequest, LeaderResponse]{ClientStream: stream}
	if err := s.SendMsg(in); err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	return s, nil
}

func invoke[Resp any](ctx context.Context, cc grpc.ClientConnInterface, service, name string, in any, opts []grpc.CallOption) (*Resp, error) {
	out := new(Resp)
	if err := cc.Invoke(ctx, "/"+service+"/"+name, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}
