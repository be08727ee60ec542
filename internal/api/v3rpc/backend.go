package v3rpc

import (
	"context"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Member is what the gRPC services need of a running member. The server
// implements it; tests may fake it.
type Member interface {
	ID() uint64
	ClusterID() uint64
	// Leader is the leader's ID, 0 while there is none.
	Leader() uint64
	Term() uint64
	// Rev is the current store revision.
	Rev() int64

	Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error)
	Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error)
	DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error)
	Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error)
	Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error)

	Status(ctx context.Context) (*pb.StatusResponse, error)
	Hash(ctx context.Context) (*pb.HashResponse, error)
	HashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error)
	Alarms() []*pb.AlarmMember
	Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error)
	Defragment(ctx context.Context) error
	// SnapshotDB returns a consistent copy of the backend for streaming and
	// its size in bytes.
	SnapshotDB() (io.ReadCloser, int64, error)
	MemberList(ctx context.Context, linearizable bool) ([]*pb.Member, error)
	// MoveLeader hands leadership to target and waits until it leads.
	MoveLeader(ctx context.Context, target uint64) error

	// MemberAdd adds a member with the given peer URLs and returns it with
	// the member set after the change; MemberRemove, MemberUpdate and
	// MemberPromote return that set too.
	MemberAdd(ctx context.Context, peerURLs []string, learner bool) (*pb.Member, []*pb.Member, error)
	MemberRemove(ctx context.Context, id uint64) ([]*pb.Member, error)
	MemberUpdate(ctx context.Context, id uint64, peerURLs []string) ([]*pb.Member, error)
	MemberPromote(ctx context.Context, id uint64) ([]*pb.Member, error)
	// IsLearner reports whether this member is a learner; a learner serves
	// only Status, serializable ranges and snapshots.
	IsLearner() bool
}
