package v3concurrency

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// firstKeepAliveTimeout is how long the client's lessor waits for the
// first keep-alive answer of a lease, as etcd's own member client.
const firstKeepAliveTimeout = time.Second

// NewClient returns the client the services run on: KV, Lease and Watch
// over cc, a connection to the member's own gRPC server, with no endpoint
// management (Endpoints, Sync, Dial do nothing useful on it). Close stops
// its lessor and watcher; cc stays the caller's to close.
func NewClient(cc *grpc.ClientConn, lg *zap.Logger) *clientv3.Client {
	if lg == nil {
		lg = zap.NewNop()
	}
	c := clientv3.NewCtxClient(context.Background(), clientv3.WithZapLogger(lg))
	c.KV = clientv3.NewKVFromKVClient(pb.NewKVClient(cc), c)
	c.Lease = clientv3.NewLeaseFromLeaseClient(pb.NewLeaseClient(cc), c, firstKeepAliveTimeout)
	c.Watcher = clientv3.NewWatchFromWatchClient(pb.NewWatchClient(cc), c)
	return c
}
