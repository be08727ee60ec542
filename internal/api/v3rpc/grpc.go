package v3rpc

import (
	"context"
	"crypto/tls"
	"math"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// Options configure the gRPC server.
type Options struct {
	Logger *zap.Logger
	// TLS, when set, makes the server terminate TLS itself (only for
	// listeners that are not already TLS).
	TLS *tls.Config
	// MaxRequestBytes is --max-request-bytes; the gRPC receive limit is
	// this plus 512 KiB of headroom for the envelope, as in etcd.
	MaxRequestBytes uint
	// MaxTxnOps is --max-txn-ops.
	MaxTxnOps uint
	// MaxConcurrentStreams is --max-concurrent-streams.
	MaxConcurrentStreams uint32
	// Keepalive settings (--grpc-keepalive-*).
	KeepaliveMinTime, KeepaliveInterval, KeepaliveTimeout time.Duration
	// StorageVersion is reported in snapshot streams.
	StorageVersion string
	// ElectionTimeout paces the check that ends the streams of clients
	// requiring a leader while there is none (default 1s).
	ElectionTimeout time.Duration
}

// streamWorkers is the number of gRPC stream workers: enough for the
// requests in flight of a few hundred clients.
const streamWorkers = 256

// grpcOverheadBytes is the room above --max-request-bytes that a gRPC
// message may use.
const grpcOverheadBytes = 512 * 1024

// NewServer builds the gRPC server with etcd's services registered. Services
// cairn does not serve yet (Auth; Watch when m is no WatchMember) answer
// codes.Unimplemented.
func NewServer(m Member, o Options) *grpc.Server {
	var opts []grpc.ServerOption
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(o.TLS)))
	}
	opts = append(opts,
		grpc.MaxRecvMsgSize(int(o.MaxRequestBytes)+grpcOverheadBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(o.MaxConcurrentStreams),
		grpc.ForceServerCodecV2(newCodec()),
		// Handlers run on long-lived workers whose stacks have already
		// grown: a fresh goroutine per RPC starts at 8 KiB and grows (a
		// stack copy) on the way down to the request's marshalling, which
		// was a tenth of the CPU of a 100-client put load. RPCs beyond the
		// workers (blocked in a proposal, or long-lived streams) get a
		// goroutine of their own, as without workers.
		grpc.NumStreamWorkers(streamWorkers),
	)
	if o.KeepaliveMinTime > 0 {
		opts = append(opts, grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime: o.KeepaliveMinTime, PermitWithoutStream: false,
		}))
	}
	if o.KeepaliveInterval > 0 || o.KeepaliveTimeout > 0 {
		opts = append(opts, grpc.KeepaliveParams(keepalive.ServerParameters{
			Time: o.KeepaliveInterval, Timeout: o.KeepaliveTimeout,
		}))
	}
	// A learner refuses first, as etcd's interceptor checks in that order.
	lstream := learnerInterceptors(m)
	stream := leaderInterceptors(m, newLeaderMonitor(m, o.ElectionTimeout))
	// The unary checks run in one interceptor: gRPC's chaining of two
	// allocates a closure per call.
	opts = append(opts, grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if err := learnerRefuses(m, req); err != nil {
			return nil, err
		}
		if err := leaderRefuses(m, ctx); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}), grpc.ChainStreamInterceptor(lstream, stream))
	gs := grpc.NewServer(opts...)
	hdr := header{m: m}
	pb.RegisterKVServer(gs, &kvServer{hdr: hdr, m: m, maxTxnOps: int(o.MaxTxnOps)})
	pb.RegisterMaintenanceServer(gs, &maintenanceServer{lg: o.Logger, hdr: hdr, m: m, storageVersion: o.StorageVersion})
	pb.RegisterClusterServer(gs, &clusterServer{hdr: hdr, m: m})
	pb.RegisterWatchServer(gs, newWatchServer(m, o.Logger))
	registerLease(gs, m, hdr, o.Logger)
	pb.RegisterAuthServer(gs, &authServer{hdr: hdr})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	return gs
}
