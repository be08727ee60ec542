package v3rpc

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
)

// snapshotMethod is the one streaming RPC a learner serves.
const snapshotMethod = "/etcdserverpb.Maintenance/Snapshot"

// learnerInterceptors refuse, as etcd does, what a learner must not serve:
// every unary RPC except Status and serializable ranges, and every stream
// except Snapshot, fail with "etcdserver: rpc not supported for learner".
// A learner's log may lag, and it takes no part in quorum reads or writes.
func learnerInterceptors(m Member) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if m.IsLearner() && !servedByLearner(req) {
			return nil, rpctypes.ErrGRPCNotSupportedForLearner
		}
		return h(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if m.IsLearner() && info.FullMethod != snapshotMethod {
			return rpctypes.ErrGRPCNotSupportedForLearner
		}
		return h(srv, ss)
	}
	return unary, stream
}

// servedByLearner reports whether a learner answers req.
func servedByLearner(req any) bool {
	switch r := req.(type) {
	case *pb.StatusRequest:
		return true
	case *pb.RangeRequest:
		return r.Serializable
	}
	return false
}
