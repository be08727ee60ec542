package v3rpc

import (
	"context"
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/server"
)

// The member-change methods of fakeMember: they record nothing and answer
// memberErr, or a two-member set.

func (f *fakeMember) IsLearner() bool { return f.learner.Load() }

func (f *fakeMember) members() []*pb.Member {
	return []*pb.Member{{ID: fakeID, Name: "fake"}, {ID: 42, PeerURLs: []string{"http://127.0.0.1:2"}, IsLearner: true}}
}

func (f *fakeMember) MemberAdd(_ context.Context, urls []string, learner bool) (*pb.Member, []*pb.Member, error) {
	if f.memberErr != nil {
		return nil, nil, f.memberErr
	}
	return &pb.Member{ID: 42, PeerURLs: urls, IsLearner: learner}, f.members(), nil
}

func (f *fakeMember) MemberRemove(context.Context, uint64) ([]*pb.Member, error) {
	return f.members(), f.memberErr
}

func (f *fakeMember) MemberUpdate(context.Context, uint64, []string) ([]*pb.Member, error) {
	return f.members(), f.memberErr
}

func (f *fakeMember) MemberPromote(context.Context, uint64) ([]*pb.Member, error) {
	return f.members(), f.memberErr
}

func TestMemberChanges(t *testing.T) {
	m := &fakeMember{kvs: map[string]string{}}
	_, conn := serve(t, m, Options{})
	cc := pb.NewClusterClient(conn)
	ctx := testCtx(t)
	add, err := cc.MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: []string{"http://127.0.0.1:2"}, IsLearner: true})
	if err != nil {
		t.Fatal(err)
	}
	// etcd's header carries no revision on Cluster responses.
	wantHdr := &pb.ResponseHeader{ClusterId: fakeCluster, MemberId: fakeID, RaftTerm: fakeTerm}
	if add.Header.String() != wantHdr.String() || add.Member.ID != 42 || !add.Member.IsLearner || len(add.Members) != 2 {
		t.Fatalf("add: %v", add)
	}
	rm, err := cc.MemberRemove(ctx, &pb.MemberRemoveRequest{ID: 42})
	if err != nil || rm.Header.String() != wantHdr.String() || len(rm.Members) != 2 {
		t.Fatalf("remove: %v %v", rm, err)
	}
	up, err := cc.MemberUpdate(ctx, &pb.MemberUpdateRequest{ID: 42, PeerURLs: []string{"http://127.0.0.1:3"}})
	if err != nil || up.Header.String() != wantHdr.String() || len(up.Members) != 2 {
		t.Fatalf("update: %v %v", up, err)
	}
	pr, err := cc.MemberPromote(ctx, &pb.MemberPromoteRequest{ID: 42})
	if err != nil || pr.Header.String() != wantHdr.String() || len(pr.Members) != 2 {
		t.Fatalf("promote: %v %v", pr, err)
	}
}

// Each refusal reaches the client as etcd 3.6.16 sends it (code and text,
// as etcdctl's retry warning shows them).
func TestMemberChangeErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{membership.ErrIDNotFound, codes.NotFound, "etcdserver: member not found"},
		{membership.ErrIDRemoved, codes.NotFound, "etcdserver: member not found"},
		{membership.ErrIDExists, codes.FailedPrecondition, "etcdserver: member ID already exist"},
		{membership.ErrPeerURLExists, codes.FailedPrecondition, "etcdserver: Peer URLs already exists"},
		{membership.ErrMemberNotLearner, codes.FailedPrecondition, "etcdserver: can only promote a learner member"},
		{membership.ErrTooManyLearners, codes.FailedPrecondition, "etcdserver: too many learner members in cluster"},
		{server.ErrNotEnoughStartedMembers, codes.Unknown, "etcdserver: re-configuration failed due to not enough started members"},
		{server.ErrUnhealthy, codes.Unavailable, "etcdserver: unhealthy cluster"},
		{server.ErrLearnerNotReady, codes.FailedPrecondition, "etcdserver: can only promote a learner member which is in sync with leader"},
		{fmt.Errorf("%w: parse", server.ErrBadPeerURLs), codes.InvalidArgument, "etcdserver: given member URLs are invalid"},
	} {
		t.Run(tc.msg, func(t *testing.T) {
			m := &fakeMember{kvs: map[string]string{}, memberErr: tc.err}
			_, conn := serve(t, m, Options{})
			cc := pb.NewClusterClient(conn)
			ctx := testCtx(t)
			_, addErr := cc.MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: []string{"http://127.0.0.1:2"}})
			_, rmErr := cc.MemberRemove(ctx, &pb.MemberRemoveRequest{ID: 1})
			_, upErr := cc.MemberUpdate(ctx, &pb.MemberUpdateRequest{ID: 1})
			_, prErr := cc.MemberPromote(ctx, &pb.MemberPromoteRequest{ID: 1})
			for _, err := range []error{addErr, rmErr, upErr, prErr} {
				st, _ := status.FromError(err)
				if st.Code() != tc.code || st.Message() != tc.msg {
					t.Fatalf("got %v %q, want %v %q", st.Code(), st.Message(), tc.code, tc.msg)
				}
			}
		})
	}
}

// A learner serves Status, serializable ranges and snapshots, and refuses
// everything else with etcd's error, before any other check.
func TestLearnerRefuses(t *testing.T) {
	m := &fakeMember{kvs: map[string]string{}}
	m.learner.Store(true)
	m.noLeader.Store(true) // the learner check comes before the leader check
	_, conn := serve(t, m, Options{})
	ctx := testCtx(t)
	kv, mc, cc := pb.NewKVClient(conn), pb.NewMaintenanceClient(conn), pb.NewClusterClient(conn)
	refused := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, rpctypes.ErrGRPCNotSupportedForLearner) {
			t.Errorf("%s on a learner: %v", name, err)
		}
	}
	_, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("k")})
	refused("put", err)
	_, err = kv.Range(ctx, &pb.RangeRequest{Key: []byte("k")})
	refused("linearizable range", err)
	_, err = kv.Txn(ctx, &pb.TxnRequest{})
	refused("txn", err)
	_, err = cc.MemberList(ctx, &pb.MemberListRequest{})
	refused("member list", err)
	_, err = cc.MemberPromote(ctx, &pb.MemberPromoteRequest{ID: 42})
	refused("member promote", err)
	_, err = mc.Alarm(ctx, &pb.AlarmRequest{})
	refused("alarm", err)
	w, err := pb.NewWatchClient(conn).Watch(ctx)
	if err == nil {
		_, err = w.Recv()
	}
	refused("watch", err)

	if _, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("k"), Serializable: true}); err != nil {
		t.Errorf("serializable range on a learner: %v", err)
	}
	if _, err := mc.Status(ctx, &pb.StatusRequest{}); err != nil {
		t.Errorf("status on a learner: %v", err)
	}
	st, err := mc.Snapshot(ctx, &pb.SnapshotRequest{})
	if err == nil {
		_, err = st.Recv()
	}
	if err != nil {
		t.Errorf("snapshot on a learner: %v", err)
	}
	if m.called() != 1 {
		t.Errorf("the member was reached %d times, want once (the serializable range)", m.called())
	}
}
