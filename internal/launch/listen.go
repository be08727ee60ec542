package launch

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/soheilhy/cmux"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// clientListener serves gRPC and HTTP on one client URL. Connections are
// told apart by their first bytes (cmux): HTTP/2 with content-type
// application/grpc goes to the gRPC server on its native transport, the rest
// to the HTTP handler.
type clientListener struct {
	lg    *zap.Logger
	url   url.URL
	l     net.Listener
	mux   cmux.CMux
	grpcL net.Listener
	httpL net.Listener

	// mu orders serve and close, which run on different goroutines (a
	// signal can stop the member while its listeners are starting).
	mu     sync.Mutex
	hs     *http.Server
	closed bool
}

// listenClient binds u. For https and unixs URLs, TLS is terminated on the
// listener with tlsCfg, before connections are split.
func listenClient(lg *zap.Logger, u url.URL, tlsCfg *tls.Config) (*clientListener, error) {
	var (
		l   net.Listener
		err error
	)
	switch u.Scheme {
	case "unix", "unixs":
		path := u.Host + u.Path
		// A stale socket file from an earlier run would make bind fail.
		if fi, statErr := os.Stat(path); statErr == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(path)
		}
		l, err = net.Listen("unix", path)
	case "http", "https":
		l, err = net.Listen("tcp", u.Host)
	default:
		return nil, fmt.Errorf("unsupported client URL scheme %q", u.Scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", u.String(), err)
	}
	if u.Scheme == "https" || u.Scheme == "unixs" {
		if tlsCfg == nil {
			l.Close()
			return nil, fmt.Errorf("TLS key/cert (--cert-file, --key-file) must be provided for client url %s with HTTPS scheme", u.String())
		}
		l = tls.NewListener(l, tlsCfg)
	}
	m := cmux.New(l)
	m.SetReadTimeout(10 * time.Second)
	cl := &clientListener{lg: lg, url: u, l: l, mux: m}
	if u.Scheme == "http" || u.Scheme == "unix" {
		// A TLS client on a plain port gets its connection closed, as etcd
		// does, rather than an HTTP error it cannot read.
		go rejectAll(m.Match(cmux.TLS()))
	}
	cl.grpcL = m.MatchWithWriters(cmux.HTTP2MatchHeaderFieldSendSettings("content-type", "application/grpc"))
	cl.httpL = m.Match(cmux.Any())
	return cl, nil
}

// serve runs until the listener is closed. It returns the first error of
// the gRPC, HTTP or mux servers that is not a normal shutdown.
func (cl *clientListener) serve(gs *grpc.Server, h http.Handler) error {
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return nil
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, ErrorLog: zap.NewStdLog(cl.lg)}
	cl.hs = hs
	cl.mu.Unlock()
	errc := make(chan error, 3)
	go func() { errc <- gs.Serve(cl.grpcL) }()
	go func() { errc <- hs.Serve(cl.httpL) }()
	go func() { errc <- cl.mux.Serve() }()
	err := <-errc
	if isClosed(err) {
		return nil
	}
	return err
}

func (cl *clientListener) close() error {
	cl.mu.Lock()
	cl.closed = true
	hs := cl.hs
	cl.mu.Unlock()
	if hs != nil {
		hs.Close()
	}
	return cl.l.Close()
}

func isClosed(err error) bool {
	return err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) ||
		errors.Is(err, cmux.ErrListenerClosed) || errors.Is(err, grpc.ErrServerStopped) || errors.Is(err, cmux.ErrServerClosed)
}

// rejectAll closes every connection l accepts, until l is closed. What the
// client already sent is read first, so the close is a clean FIN (the
// client sees EOF) rather than a reset.
func rejectAll(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			io.Copy(io.Discard, c)
			c.Close()
		}()
	}
}
