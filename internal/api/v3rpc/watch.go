package v3rpc

import (
	"context"
	"errors"
	"fmt"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/watch"
)

// WatchMember is the add-on a Member implements to serve Watch: the hub
// its store feeds. A Member without it answers Watch with Unimplemented.
type WatchMember interface {
	WatchHub() *watch.Hub
}

// watchServer adapts gRPC watch streams to the hub's streams.
type watchServer struct {
	lg  *zap.Logger
	m   Member
	hub *watch.Hub
}

func newWatchServer(m Member, lg *zap.Logger) pb.WatchServer {
	wm, ok := m.(WatchMember)
	if !ok || wm.WatchHub() == nil {
		return &pb.UnimplementedWatchServer{}
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	return &watchServer{lg: lg, m: m, hub: wm.WatchHub()}
}

// Watch serves one stream, as etcd's: requests are read on this goroutine
// and handed to the hub's stream, whose own goroutine sends; a client that
// closes its sending side keeps receiving until it cancels the stream. The
// stream ends with etcd's errors: "watch canceled" when the client cancels,
// "no leader" when the leader monitor ends it.
func (ws *watchServer) Watch(stream pb.Watch_WatchServer) error {
	ctx := stream.Context()
	// SendMsg, not Send: the hub's encoded responses (shared event bytes)
	// go to the codec as they are.
	send := func(m watch.Message) error { return stream.SendMsg(m) }
	st := ws.hub.NewStream(send, func(rev int64) *pb.ResponseHeader {
		return &pb.ResponseHeader{ClusterId: ws.m.ClusterID(), MemberId: ws.m.ID(), Revision: rev, RaftTerm: ws.m.Term()}
	})
	sent := make(chan error, 1)
	go func() { sent <- st.Run() }()
	recvd := make(chan error, 1)
	go func() { recvd <- ws.recv(stream, st) }()
	var err error
	select {
	case err = <-recvd:
		if err == nil { // the client closed its side: serve until it goes
			select {
			case <-ctx.Done():
				err = ctx.Err()
			case err = <-sent:
			}
		}
	case err = <-sent:
	case <-ctx.Done():
		err = ctx.Err()
	}
	st.Close()
	if serr := <-sent; err == nil {
		err = serr
	}
	switch {
	case errors.Is(context.Cause(ctx), rpctypes.ErrGRPCNoLeader):
		return rpctypes.ErrGRPCNoLeader
	case errors.Is(err, context.Canceled):
		return rpctypes.ErrGRPCWatchCanceled
	}
	return err
}

// recv hands the client's requests to st until the client closes its side
// (nil) or the stream fails.
func (ws *watchServer) recv(stream pb.Watch_WatchServer, st *watch.Stream) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch u := req.RequestUnion.(type) {
		case *pb.WatchRequest_CreateRequest:
			if u.CreateRequest != nil {
				st.Create(u.CreateRequest)
			}
		case *pb.WatchRequest_CancelRequest:
			if u.CancelRequest != nil {
				st.Cancel(u.CancelRequest.WatchId)
			}
		case *pb.WatchRequest_ProgressRequest:
			if u.ProgressRequest != nil {
				st.RequestProgress()
			}
		default:
			// etcd ignores a request it does not know and keeps the stream.
			ws.lg.Info("invalid watch request type received in gRPC stream", zap.String("type", fmt.Sprintf("%T", u)))
		}
	}
}
