package v3rpc

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnkv/cairn/internal/apply"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/mvcc"
	"github.com/cairnkv/cairn/internal/server"
	"github.com/cairnkv/cairn/internal/txn"
)

// errGRPCNotEnoughStarted is etcd 3.6.16's answer to a reconfiguration the
// started-members rule refuses: etcd maps that error to its client-side
// value rather than to a status, so gRPC sends codes.Unknown with the text.
var errGRPCNotEnoughStarted = status.Error(codes.Unknown, server.ErrNotEnoughStartedMembers.Error())

// errorTable maps the sentinels of the layers below to etcd's gRPC errors.
// Order matters only where one error wraps another.
var errorTable = []struct {
	err  error
	grpc error
}{
	{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{mvcc.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{txn.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{txn.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	{txn.ErrDuplicateKey, rpctypes.ErrGRPCDuplicateKey},
	{server.ErrStopped, rpctypes.ErrGRPCStopped},
	{server.ErrTimeoutLeaderFail, rpctypes.ErrGRPCTimeoutDueToLeaderFail},
	{server.ErrTimeout, rpctypes.ErrGRPCTimeout},
	{server.ErrNoLeader, rpctypes.ErrGRPCNoLeader},
	{server.ErrCanceled, rpctypes.ErrGRPCCanceled},
	{server.ErrRequestTooLarge, rpctypes.ErrGRPCRequestTooLarge},
	{server.ErrTooManyRequests, rpctypes.ErrGRPCRequestTooManyRequests},
	{server.ErrNoSpace, rpctypes.ErrGRPCNoSpace},
	{server.ErrBadLeaderTransferee, rpctypes.ErrGRPCBadLeaderTransferee},
	{membership.ErrIDRemoved, rpctypes.ErrGRPCMemberNotFound},
	{membership.ErrIDNotFound, rpctypes.ErrGRPCMemberNotFound},
	{membership.ErrIDExists, rpctypes.ErrGRPCMemberExist},
	{membership.ErrPeerURLExists, rpctypes.ErrGRPCPeerURLExist},
	{membership.ErrMemberNotLearner, rpctypes.ErrGRPCMemberNotLearner},
	{membership.ErrTooManyLearners, rpctypes.ErrGRPCTooManyLearners},
	{server.ErrNotEnoughStartedMembers, errGRPCNotEnoughStarted},
	{server.ErrLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady},
	{server.ErrUnhealthy, rpctypes.ErrGRPCUnhealthy},
	{server.ErrBadPeerURLs, rpctypes.ErrGRPCMemberBadURLs},
	{apply.ErrNoSpace, rpctypes.ErrGRPCNoSpace},
	{apply.ErrCorrupt, rpctypes.ErrGRPCCorrupt},
	{context.Canceled, rpctypes.ErrGRPCCanceled},
	{context.DeadlineExceeded, rpctypes.ErrGRPCTimeout},
}

// toGRPCError translates an error from the server into the gRPC status
// etcd's clients expect. Errors that already carry a gRPC status pass
// through; unknown errors become codes.Unknown with their text.
func toGRPCError(err error) error {
	if err == nil {
		return nil
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.grpc
		}
	}
	if errors.Is(err, server.ErrNoDiskSpace) {
		return status.Error(codes.ResourceExhausted, server.ErrNoDiskSpace.Error())
	}
	if errors.Is(err, server.ErrNotSupported) {
		return status.Error(codes.Unimplemented, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Unknown, err.Error())
}
