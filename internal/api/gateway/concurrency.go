package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	v3c "github.com/cairnkv/cairn/internal/api/v3concurrency"
)

// The routes of the lock and election services. etcd generates them into
// its server module (which cairn does not import); these handlers do what
// its generated ones do, with the same runtime calls: decode the body into
// the request (an empty body is an empty request; bad JSON is
// InvalidArgument), call the method with the HTTP request's context,
// forward headers and trailers, answer the message or the error, and for
// Observe a stream of {"result": ...} lines.

func registerLock(_ context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	c := v3c.NewLockClient(conn)
	unaryRoute(mux, v3c.LockService, "Lock", "/v3/lock/lock", c.Lock)
	unaryRoute(mux, v3c.LockService, "Unlock", "/v3/lock/unlock", c.Unlock)
	return nil
}

func registerElection(_ context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	c := v3c.NewElectionClient(conn)
	unaryRoute(mux, v3c.ElectionService, "Campaign", "/v3/election/campaign", c.Campaign)
	unaryRoute(mux, v3c.ElectionService, "Proclaim", "/v3/election/proclaim", c.Proclaim)
	unaryRoute(mux, v3c.ElectionService, "Leader", "/v3/election/leader", c.Leader)
	streamRoute(mux, v3c.ElectionService, "Observe", "/v3/election/observe", c.Observe)
	unaryRoute(mux, v3c.ElectionService, "Resign", "/v3/election/resign", c.Resign)
	return nil
}

// message is what the routes' requests and responses are: a protobuf v1
// message held by pointer.
type message[T any] interface {
	*T
	protoadapt.MessageV1
}

// unaryRoute serves POST path by the unary method service/name (call).
func unaryRoute[Req, Resp any, PReq message[Req], PResp message[Resp]](mux *runtime.ServeMux, service, name, path string,
	call func(context.Context, PReq, ...grpc.CallOption) (PResp, error)) {
	mux.Handle(http.MethodPost, literalPattern(path), func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		in, out := runtime.MarshalerForRequest(mux, r)
		actx, err := runtime.AnnotateContext(ctx, mux, r, "/"+service+"/"+name, runtime.WithHTTPPathPattern(path))
		if err != nil {
			runtime.HTTPError(ctx, mux, out, w, r, err)
			return
		}
		req := PReq(new(Req))
		if err := decodeBody(in, r, req); err != nil {
			runtime.HTTPError(actx, mux, out, w, r, err)
			return
		}
		var md runtime.ServerMetadata
		resp, err := call(actx, req, grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
		actx = runtime.NewServerMetadataContext(actx, md)
		if err != nil {
			runtime.HTTPError(actx, mux, out, w, r, err)
			return
		}
		runtime.ForwardResponseMessage(actx, mux, out, w, r, protoadapt.MessageV2Of(resp), mux.GetForwardResponseOptions()...)
	})
}

// streamRoute serves POST path by the server-streaming method service/name
// (call): each message is a line {"result": ...}, an error ends the stream
// with a line {"error": ...}.
func streamRoute[Req, Resp any, PReq message[Req], PResp message[Resp]](mux *runtime.ServeMux, service, name, path string,
	call func(context.Context, PReq, ...grpc.CallOption) (grpc.ServerStreamingClient[Resp], error)) {
	mux.Handle(http.MethodPost, literalPattern(path), func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		in, out := runtime.MarshalerForRequest(mux, r)
		actx, err := runtime.AnnotateContext(ctx, mux, r, "/"+service+"/"+name, runtime.WithHTTPPathPattern(path))
		if err != nil {
			runtime.HTTPError(ctx, mux, out, w, r, err)
			return
		}
		req := PReq(new(Req))
		var md runtime.ServerMetadata
		stream, err := func() (grpc.ServerStreamingClient[Resp], error) {
			if err := decodeBody(in, r, req); err != nil {
				return nil, err
			}
			stream, err := call(actx, req)
			if err != nil {
				return nil, err
			}
			if md.HeaderMD, err = stream.Header(); err != nil {
				return nil, err
			}
			return stream, nil
		}()
		actx = runtime.NewServerMetadataContext(actx, md)
		if err != nil {
			runtime.HTTPError(actx, mux, out, w, r, err)
			return
		}
		runtime.ForwardResponseStream(actx, mux, out, w, r, func() (proto.Message, error) {
			m, err := stream.Recv()
			if err != nil {
				return nil, err
			}
			return protoadapt.MessageV2Of(PResp(m)), nil
		}, mux.GetForwardResponseOptions()...)
	})
}

// decodeBody reads the JSON body into req and drains what is left.
func decodeBody(in runtime.Marshaler, r *http.Request, req protoadapt.MessageV1) error {
	if err := in.NewDecoder(r.Body).Decode(protoadapt.MessageV2Of(req)); err != nil && !errors.Is(err, io.EOF) {
		return status.Errorf(codes.InvalidArgument, "%v", err)
	}
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
	}
	return nil
}

// literalPattern is the route pattern of a path of literal segments.
func literalPattern(path string) runtime.Pattern {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	ops := make([]int, 0, 2*len(segs))
	for i := range segs {
		ops = append(ops, int(utilities.OpLitPush), i)
	}
	return runtime.MustPattern(runtime.NewPattern(1, ops, segs, ""))
}
