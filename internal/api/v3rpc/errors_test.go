package v3rpc

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnkv/cairn/internal/apply"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/mvcc"
	"github.com/cairnkv/cairn/internal/server"
	"github.com/cairnkv/cairn/internal/txn"
)

func TestToGRPCErrorTable(t *testing.T) {
	// Written out rather than derived from errorTable, so that a dropped or
	// changed row fails here.
	want := []struct {
		err  error
		grpc error
		// client is what a clientv3 user compares against.
		client error
	}{
		{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted, rpctypes.ErrCompacted},
		{mvcc.ErrFutureRev, rpctypes.ErrGRPCFutureRev, rpctypes.ErrFutureRev},
		{txn.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound, rpctypes.ErrLeaseNotFound},
		{txn.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound, rpctypes.ErrKeyNotFound},
		{txn.ErrDuplicateKey, rpctypes.ErrGRPCDuplicateKey, rpctypes.ErrDuplicateKey},
		{server.ErrStopped, rpctypes.ErrGRPCStopped, rpctypes.ErrStopped},
		{server.ErrTimeoutLeaderFail, rpctypes.ErrGRPCTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToLeaderFail},
		{server.ErrTimeout, rpctypes.ErrGRPCTimeout, rpctypes.ErrTimeout},
		{server.ErrNoLeader, rpctypes.ErrGRPCNoLeader, rpctypes.ErrNoLeader},
		{server.ErrCanceled, rpctypes.ErrGRPCCanceled, rpctypes.ErrGRPCCanceled},
		{server.ErrRequestTooLarge, rpctypes.ErrGRPCRequestTooLarge, rpctypes.ErrRequestTooLarge},
		{server.ErrTooManyRequests, rpctypes.ErrGRPCRequestTooManyRequests, rpctypes.ErrTooManyRequests},
		{server.ErrNoSpace, rpctypes.ErrGRPCNoSpace, rpctypes.ErrNoSpace},
		{server.ErrBadLeaderTransferee, rpctypes.ErrGRPCBadLeaderTransferee, rpctypes.ErrBadLeaderTransferee},
		{membership.ErrIDRemoved, rpctypes.ErrGRPCMemberNotFound, rpctypes.ErrMemberNotFound},
		{membership.ErrIDNotFound, rpctypes.ErrGRPCMemberNotFound, rpctypes.ErrMemberNotFound},
		{membership.ErrIDExists, rpctypes.ErrGRPCMemberExist, rpctypes.ErrMemberExist},
		{membership.ErrPeerURLExists, rpctypes.ErrGRPCPeerURLExist, rpctypes.ErrPeerURLExist},
		{membership.ErrMemberNotLearner, rpctypes.ErrGRPCMemberNotLearner, rpctypes.ErrMemberNotLearner},
		{membership.ErrTooManyLearners, rpctypes.ErrGRPCTooManyLearners, rpctypes.ErrTooManyLearners},
		{server.ErrNotEnoughStartedMembers, errGRPCNotEnoughStarted, rpctypes.ErrMemberNotEnoughStarted},
		{server.ErrLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady, rpctypes.ErrMemberLearnerNotReady},
		{server.ErrUnhealthy, rpctypes.ErrGRPCUnhealthy, rpctypes.ErrUnhealthy},
		{server.ErrBadPeerURLs, rpctypes.ErrGRPCMemberBadURLs, rpctypes.ErrMemberBadURLs},
		{apply.ErrNoSpace, rpctypes.ErrGRPCNoSpace, rpctypes.ErrNoSpace},
		{apply.ErrCorrupt, rpctypes.ErrGRPCCorrupt, rpctypes.ErrCorrupt},
		{context.Canceled, rpctypes.ErrGRPCCanceled, rpctypes.ErrGRPCCanceled},
		{context.DeadlineExceeded, rpctypes.ErrGRPCTimeout, rpctypes.ErrTimeout},
	}
	if len(want) != len(errorTable) {
		t.Errorf("errorTable has %d rows, this test knows %d: cover the new ones", len(errorTable), len(want))
	}
	for _, tc := range want {
		t.Run(tc.err.Error(), func(t *testing.T) {
			for _, in := range []error{
				tc.err,
				fmt.Errorf("apply: %w", tc.err),
				fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", tc.err)),
				errors.Join(errors.New("unrelated"), tc.err),
			} {
				got := toGRPCError(in)
				if got != tc.grpc {
					t.Fatalf("toGRPCError(%q) = %v, want %v", in, got, tc.grpc)
				}
				if c := rpctypes.Error(got); c != tc.client {
					t.Fatalf("client sees %v, want %v", c, tc.client)
				}
			}
		})
	}
}

func TestToGRPCErrorOthers(t *testing.T) {
	if toGRPCError(nil) != nil {
		t.Fatal("nil must stay nil")
	}
	for _, tc := range []struct {
		name string
		in   error
		code codes.Code
		msg  string
		same bool // the very error comes back
	}{
		{"rpctypes status passes through", rpctypes.ErrGRPCEmptyKey, codes.InvalidArgument, "etcdserver: key is not provided", true},
		{"any status passes through", status.Error(codes.Aborted, "busy"), codes.Aborted, "busy", true},
		{"disk full", server.ErrNoDiskSpace, codes.ResourceExhausted, server.ErrNoDiskSpace.Error(), false},
		// The free/needed numbers stay in the log, the client gets the sentinel text.
		{"disk full wrapped", fmt.Errorf("%w (1 bytes free, 2 needed)", server.ErrNoDiskSpace), codes.ResourceExhausted, server.ErrNoDiskSpace.Error(), false},
		{"not supported keeps its detail", fmt.Errorf("%w: leases", server.ErrNotSupported), codes.Unimplemented, "server: not supported yet: leases", false},
		{"unknown", errors.New("disk on fire"), codes.Unknown, "disk on fire", false},
		{"unknown wrapped", fmt.Errorf("range: %w", errors.New("bad")), codes.Unknown, "range: bad", false},
		// etcd 3.6.16 sends this refusal as codes.Unknown.
		{"not enough started members", fmt.Errorf("check: %w", server.ErrNotEnoughStartedMembers), codes.Unknown, "etcdserver: re-configuration failed due to not enough started members", false},
		{"unsupported apply kind is unknown", fmt.Errorf("%w: lease grant", apply.ErrUnsupported), codes.Unknown, "apply: request kind not supported yet: lease grant", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := toGRPCError(tc.in)
			if tc.same && got != tc.in {
				t.Fatalf("toGRPCError changed %v into %v", tc.in, got)
			}
			st, ok := status.FromError(got)
			if !ok {
				t.Fatalf("toGRPCError(%v) = %v carries no status", tc.in, got)
			}
			if st.Code() != tc.code || st.Message() != tc.msg {
				t.Fatalf("toGRPCError(%v) = %v %q, want %v %q", tc.in, st.Code(), st.Message(), tc.code, tc.msg)
			}
		})
	}
}
