// Package gateway serves etcd's JSON gateway: the v3 gRPC API as JSON over
// HTTP POST under /v3/ (and /v3beta/, the old prefix etcd 3.6 still
// rewrites to /v3/), on the client port next to the other HTTP endpoints.
//
// It is the gateway etcd generates from its API (go.etcd.io/etcd/api/v3/
// etcdserverpb/gw, run by grpc-gateway's runtime), plus routes for the lock
// and election services doing what etcd's generated ones do
// (concurrency.go), with etcd's JSON mapping:
// proto field names, 64-bit integers as strings, bytes as base64, zero
// values omitted, unknown request fields ignored, errors as
// {"code":<grpc code>,"message":<text>} with grpc-gateway's HTTP status for
// the code. Unknown paths under /v3/ answer 404 {"code":5,...}, other
// methods than POST 501 {"code":12,...}.
//
// Every request is forwarded to the member's own gRPC server over a gRPC
// connection held in memory (inmem.Listener): the gateway sees exactly what a
// gRPC client sees, services cairn does not serve yet answer with the gRPC
// server's Unimplemented error, and each service appears here as soon as the
// gRPC server serves it. The in-memory connection needs no address, TLS
// configuration or client certificate, so it works the same behind http,
// https and unix client URLs; unlike a loopback port, no other process can
// use it to go around the client port's TLS.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	gw "go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cairnkv/cairn/internal/api/inmem"
)

// Prefix is the path prefix the gateway serves; BetaPrefix is the older
// prefix etcd 3.6 still answers by rewriting it to Prefix. (The even older
// /v3alpha/ is not served by etcd 3.6.)
const (
	Prefix     = "/v3/"
	BetaPrefix = "/v3beta/"
)

// Options configure a Gateway.
type Options struct {
	// Logger receives the errors of the in-memory gRPC listener.
	Logger *zap.Logger
}

// Gateway is a running gateway: an in-memory listener served by the gRPC
// server, a client connection to it, and the HTTP handler that forwards to
// that connection. Close releases them.
type Gateway struct {
	lg     *zap.Logger
	l      *inmem.Listener
	conn   *grpc.ClientConn
	mux    *runtime.ServeMux
	served chan struct{} // closed when gs.Serve on l returned

	closeOnce sync.Once
	closing   chan struct{} // closed when Close starts
	closeErr  error
}

// registrars are the gateway's handlers, one per v3 service: etcd's
// generated ones for the services of its API module, and cairn's for the
// lock and election services, whose generated gateways live in etcd's
// server module (concurrency.go).
var registrars = []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
	gw.RegisterKVHandler,
	gw.RegisterWatchHandler,
	gw.RegisterLeaseHandler,
	gw.RegisterClusterHandler,
	gw.RegisterMaintenanceHandler,
	gw.RegisterAuthHandler,
	registerElection,
	registerLock,
}

// New starts a gateway in front of gs: gs is made to serve an in-memory
// listener (gs.Serve runs until Close), and a client connection to it backs
// the handlers. gs must have every v3 service registered before New.
func New(gs *grpc.Server, o Options) (*Gateway, error) {
	lg := o.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	l := inmem.New()
	// A Range or a snapshot chunk may be as large as the server sends (its
	// limit is math.MaxInt32).
	conn, err := l.ClientConn(grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)))
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard,
		&runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		}}))
	for _, register := range registrars {
		// The handlers do not keep this context: each request's gRPC call
		// runs under the HTTP request's context, so a client that goes
		// away cancels it.
		if err := register(context.Background(), mux, conn); err != nil {
			conn.Close()
			return nil, fmt.Errorf("gateway: register handlers: %w", err)
		}
	}
	g := &Gateway{lg: lg, l: l, conn: conn, mux: mux,
		served: make(chan struct{}), closing: make(chan struct{})}
	go g.serve(gs)
	return g, nil
}

// serve runs gs on the in-memory listener until Close.
func (g *Gateway) serve(gs *grpc.Server) {
	defer close(g.served)
	err := gs.Serve(g.l)
	select {
	case <-g.closing:
		return // Close ended it
	default:
	}
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		g.lg.Warn("gateway's in-memory gRPC listener stopped", zap.Error(err))
	}
}

// Wrap returns a handler that serves the gateway under Prefix and
// BetaPrefix and hands every other request to next, with the routing etcd's
// client port has: a path starting with BetaPrefix is rewritten to Prefix
// before anything else, then an http.ServeMux routes (so "/v3" redirects to
// "/v3/", and non-clean paths redirect to their clean form).
func (g *Gateway) Wrap(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(Prefix, g.mux)
	mux.Handle("/", next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, BetaPrefix); ok {
			u := *r.URL
			u.Path = Prefix + rest
			u.RawPath = ""
			r2 := *r
			r2.URL = &u
			r = &r2
		}
		mux.ServeHTTP(w, r)
	})
}

// Close stops serving the in-memory listener and closes the client
// connection; requests in flight fail. It returns once gs.Serve on the
// listener has returned. Calls after the first return the first's result.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		close(g.closing)
		if err := g.conn.Close(); err != nil {
			g.closeErr = fmt.Errorf("gateway: close client connection: %w", err)
		}
		g.l.Close()
		<-g.served
	})
	return g.closeErr
}
