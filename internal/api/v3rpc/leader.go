package v3rpc

import (
	"context"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// requiresLeader reports whether the client asked, through etcd's
// "hasleader" metadata (clientv3.WithRequireLeader), that the request fail
// when the member knows no leader.
func requiresLeader(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return false
	}
	vs := md.Get(rpctypes.MetadataRequireLeaderKey)
	return len(vs) > 0 && vs[0] == rpctypes.MetadataHasLeader
}

// leaderRefuses is the leader check of a unary request.
func leaderRefuses(m Member, ctx context.Context) error {
	if m.Leader() == 0 && requiresLeader(ctx) {
		return rpctypes.ErrGRPCNoLeader
	}
	return nil
}

// leaderInterceptors refuses, as etcd does, every stream that requires a
// leader while this member has none (leaderRefuses is the unary check); mon
// ends such streams when the leader is gone for long.
func leaderInterceptors(m Member, mon *leaderMonitor) grpc.StreamServerInterceptor {
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if !requiresLeader(ss.Context()) {
			return h(srv, ss)
		}
		if m.Leader() == 0 {
			return rpctypes.ErrGRPCNoLeader
		}
		ls := mon.add(ss)
		defer mon.remove(ls)
		return h(srv, ls)
	}
	return stream
}
