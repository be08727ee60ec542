package launch

import (
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
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// clientListener is one bound client address (host:port, or a unix socket
// path) with everything served on it. As in etcd, every client URL naming
// the same address shares one socket: http://h:p and https://h:p together
// serve plain and TLS connections on the one port, told apart by each
// connection's first bytes.
//
// What a connection reaches, in cmux's order:
//
//	plain and TLS on the port:  TLS handshake → the TLS split below
//	plain only:                 TLS handshake → closed
//	plain:  HTTP/2 (preface)    → gRPC (all HTTP/2, as etcd: a non-gRPC
//	                              request gets gRPC's 415)
//	        anything else       → HTTP (HTTP/1)
//	TLS:    HTTP/2 whose first request is application/grpc → gRPC
//	        anything else       → HTTP (HTTP/1.1, or HTTP/2 over ALPN h2)
//
// With --listen-client-http-urls (etcd's split), client URLs serve gRPC
// only and client HTTP URLs HTTP only, every connection going to the one
// server. gRPC always runs on grpc-go's own HTTP/2 transport.
type clientListener struct {
	lg   *zap.Logger
	addr string // host:port, or the unix socket path
	unix bool
	// urls are the listen URLs bound here, in the order given.
	urls []url.URL
	// plain and secure say whether some URL here is http/unix, or
	// https/unixs; at least one is set.
	plain, secure bool
	// serveGRPC and serveHTTP say what the address serves; at least one is
	// set.
	serveGRPC, serveHTTP bool

	tlsInfo *transport.TLSInfo // set when secure
	l       net.Listener

	// mu orders serve and close, which run on different goroutines (a
	// signal can stop the member while its listeners are starting).
	mu      sync.Mutex
	servers []*http.Server
	closed  bool
}

// groupClientURLs gives one clientListener per address of the client URLs
// (gRPC and HTTP, or gRPC only when httpURLs is not empty) and of the
// client HTTP URLs (HTTP only). An address in both lists is refused, as
// etcd refuses it.
func groupClientURLs(lg *zap.Logger, clientURLs, httpURLs []url.URL) ([]*clientListener, error) {
	var out []*clientListener
	byAddr := map[string]*clientListener{}
	add := func(u url.URL, httpOnly bool) error {
		unix := u.Scheme == "unix" || u.Scheme == "unixs"
		addr := u.Host
		if unix {
			addr = u.Host + u.Path
		}
		cl := byAddr[addr]
		if cl == nil {
			cl = &clientListener{lg: lg, addr: addr, unix: unix, serveGRPC: !httpOnly, serveHTTP: httpOnly || len(httpURLs) == 0}
			byAddr[addr] = cl
			out = append(out, cl)
		} else if httpOnly && cl.serveGRPC {
			return fmt.Errorf("cannot bind both --listen-client-urls and --listen-client-http-urls on the same url %s", u.String())
		}
		switch u.Scheme {
		case "http", "unix":
			cl.plain = true
		case "https", "unixs":
			cl.secure = true
		default:
			return fmt.Errorf("unsupported client URL scheme %q", u.Scheme)
		}
		cl.urls = append(cl.urls, u)
		return nil
	}
	for _, u := range clientURLs {
		if err := add(u, false); err != nil {
			return nil, err
		}
	}
	for _, u := range httpURLs {
		if err := add(u, true); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// bind opens the socket. tlsInfo is required when some URL here is https
// or unixs.
func (cl *clientListener) bind(tlsInfo *transport.TLSInfo) error {
	if cl.secure {
		if tlsInfo == nil {
			u := cl.urls[0]
			for _, v := range cl.urls {
				if v.Scheme == "https" || v.Scheme == "unixs" {
					u = v
					break
				}
			}
			return fmt.Errorf("TLS key/cert (--cert-file, --key-file) must be provided for client url %s with HTTPS scheme", u.String())
		}
		cl.tlsInfo = tlsInfo
	}
	var err error
	if cl.unix {
		// A stale socket file from an earlier run would make bind fail.
		if fi, statErr := os.Stat(cl.addr); statErr == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(cl.addr)
		}
		cl.l, err = net.Listen("unix", cl.addr)
	} else {
		cl.l, err = net.Listen("tcp", cl.addr)
	}
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cl.urls[0].String(), err)
	}
	return nil
}

// traffic names what the address serves, as etcd's log lines do.
func (cl *clientListener) traffic() string {
	switch {
	case cl.serveGRPC && cl.serveHTTP:
		return "grpc+http"
	case cl.serveGRPC:
		return "grpc"
	}
	return "http"
}

// httpOptions configure the HTTP servers of client listeners.
type httpOptions struct {
	// MaxConcurrentStreams bounds the streams of one HTTP/2 connection
	// (--max-concurrent-streams).
	MaxConcurrentStreams uint32
}

// serve runs until the listener is closed. It returns the first error of
// the gRPC, HTTP or mux servers that is not a normal shutdown.
func (cl *clientListener) serve(gs *grpc.Server, h http.Handler, o httpOptions) error {
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return nil
	}
	errc := make(chan error, 8)
	run := func(f func() error) { go func() { errc <- f() }() }
	newHTTP := func(h2c bool) *http.Server {
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, ErrorLog: zap.NewStdLog(cl.lg),
			HTTP2: &http.HTTP2Config{MaxConcurrentStreams: int(o.MaxConcurrentStreams)}}
		if h2c {
			// TLS is terminated before cmux, so the server sees HTTP/2
			// over ALPN h2 as HTTP/2 without TLS.
			hs.Protocols = new(http.Protocols)
			hs.Protocols.SetHTTP1(true)
			hs.Protocols.SetUnencryptedHTTP2(true)
		}
		cl.servers = append(cl.servers, hs)
		return hs
	}

	var (
		outer  cmux.CMux
		tlsRaw net.Listener // connections to terminate TLS on
	)
	switch {
	case cl.plain && cl.secure:
		outer = cmux.New(cl.l)
		tlsRaw = outer.Match(cmux.TLS())
	case cl.plain:
		outer = cmux.New(cl.l)
		// A TLS client on a plain port gets its connection closed, as etcd
		// does, rather than an HTTP error it cannot read.
		go rejectAll(outer.Match(cmux.TLS()))
	default:
		tlsRaw = cl.l
	}
	if outer != nil {
		outer.SetReadTimeout(10 * time.Second)
		switch {
		case cl.serveGRPC && cl.serveHTTP:
			grpcL := outer.Match(cmux.HTTP2())
			httpL := outer.Match(cmux.Any())
			hs := newHTTP(false)
			run(func() error { return gs.Serve(grpcL) })
			run(func() error { return hs.Serve(httpL) })
		case cl.serveGRPC:
			grpcL := outer.Match(cmux.Any())
			run(func() error { return gs.Serve(grpcL) })
		default:
			// etcd serves HTTP/1 only here.
			go rejectAll(outer.Match(cmux.HTTP2()))
			httpL := outer.Match(cmux.Any())
			hs := newHTTP(false)
			run(func() error { return hs.Serve(httpL) })
		}
	}
	if tlsRaw != nil {
		tlsL, err := transport.NewTLSListener(tlsRaw, cl.tlsInfo)
		if err != nil {
			cl.mu.Unlock()
			cl.l.Close()
			return fmt.Errorf("client TLS on %s: %w", cl.addr, err)
		}
		switch {
		case cl.serveGRPC && cl.serveHTTP:
			inner := cmux.New(tlsL)
			inner.SetReadTimeout(10 * time.Second)
			grpcL := inner.MatchWithWriters(cmux.HTTP2MatchHeaderFieldSendSettings("content-type", "application/grpc"))
			httpL := ackFilterListener{inner.Match(cmux.Any())}
			hs := newHTTP(true)
			run(func() error { return gs.Serve(grpcL) })
			run(func() error { return hs.Serve(httpL) })
			run(inner.Serve)
		case cl.serveGRPC:
			run(func() error { return gs.Serve(tlsL) })
		default:
			// The connections are *tls.Conn: the server picks HTTP/2 from
			// ALPN itself.
			hs := newHTTP(false)
			run(func() error { return hs.Serve(tlsL) })
		}
	}
	if outer != nil {
		run(outer.Serve)
	}
	cl.mu.Unlock()

	if cl.plain {
		cl.lg.Warn("serving client traffic insecurely; this is strongly discouraged!",
			zap.String("traffic", cl.traffic()), zap.String("address", cl.addr))
	}
	if cl.secure {
		cl.lg.Info("serving client traffic securely", zap.String("traffic", cl.traffic()), zap.String("address", cl.addr))
	}
	err := <-errc
	if isClosed(err) {
		return nil
	}
	return err
}

func (cl *clientListener) close() error {
	cl.mu.Lock()
	cl.closed = true
	servers := cl.servers
	cl.mu.Unlock()
	for _, hs := range servers {
		hs.Close()
	}
	if cl.l == nil {
		return nil
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

// metricsListener is one --listen-metrics-urls URL.
type metricsListener struct {
	url url.URL
	l   net.Listener
}

// listenMetrics binds the --listen-metrics-urls: plain HTTP, or for https
// URLs TLS with the client settings. As in etcd, the TLS listener also
// checks that a client certificate's IP or DNS SANs match the client's
// address.
func listenMetrics(urls []url.URL, info *transport.TLSInfo) ([]metricsListener, error) {
	var out []metricsListener
	closeAll := func() {
		for _, p := range out {
			p.l.Close()
		}
	}
	for _, u := range urls {
		var ti *transport.TLSInfo
		if u.Scheme == "https" || u.Scheme == "unixs" {
			if info == nil {
				closeAll()
				return nil, errors.New("client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url")
			}
			ti = info
		}
		l, err := transport.NewListenerWithOpts(u.Host, u.Scheme, transport.WithTLSInfo(ti))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("listen on metrics url %s: %w", u.String(), err)
		}
		out = append(out, metricsListener{url: u, l: l})
	}
	return out, nil
}
