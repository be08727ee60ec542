package v3rpc

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
)

// snapshotMethod is the one streaming RPC a learner serves.
const snapshotMethod = "/etcdserverpb.Maintenance/Snapshot"

// A learner refuses, as etcd does, what it must not serve: every unary RPC
// except Status and serializable ranges (learnerRefuses), and every stream
// except Snapshot (learnerInterceptors), fail with "etcdserver: rpc not
// supported for learner". A learner's log may lag, and it takes no part in
// quorum reads or writes.
func learnerInterceptors(m Member) grpc.StreamServerInterceptor {
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if m.IsLearner() && info.FullMethod != snapshotMethod {
			return rpctypes.ErrGRPCNotSupportedForLearner
		}
		return h(srv, ss)
	}
	return stream
}

// learnerRefuses is the learner check of a unary request.
func learnerRefuses(m Member, req any) error {
	if m.IsLearner() && !servedByLearner(req) {
		return rpctypes.ErrGRPCNotSupportedForLearner
	}
	return nil
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
