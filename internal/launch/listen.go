package launch

import (
	"errors"
	"fmt"
	"io"
	"math"
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
	s := &serving{cl: cl, gs: gs, h: h, errc: make(chan error, 8),
		streams: int(min(o.MaxConcurrentStreams, math.MaxInt32))} // an int on 32-bit platforms too
	var err error
	switch {
	case cl.plain && cl.secure:
		m := cmux.New(cl.l)
		tlsRaw := m.Match(cmux.TLS()) // first: the plain matchers would misread a handshake
		s.routePlain(m)
		err = s.routeTLS(tlsRaw)
		s.run(m.Serve)
	case cl.plain:
		m := cmux.New(cl.l)
		// A TLS client on a plain port gets its connection closed, as etcd
		// does, rather than an HTTP error it cannot read.
		go rejectAll(m.Match(cmux.TLS()))
		s.routePlain(m)
		s.run(m.Serve)
	default:
		err = s.routeTLS(cl.l)
	}
	cl.mu.Unlock()
	if err != nil {
		cl.close()
		return err
	}

	if cl.plain {
		cl.lg.Warn("serving client traffic insecurely; this is strongly discouraged!",
			zap.String("traffic", cl.traffic()), zap.String("address", cl.addr))
	}
	if cl.secure {
		cl.lg.Info("serving client traffic securely", zap.String("traffic", cl.traffic()), zap.String("address", cl.addr))
	}
	if err := <-s.errc; !isClosed(err) {
		return err
	}
	return nil
}

// serving is one serve call's servers. Its methods run with cl.mu held.
type serving struct {
	cl      *clientListener
	gs      *grpc.Server
	h       http.Handler
	streams int // HTTP/2 streams per connection
	errc    chan error
}

// run runs f in a goroutine; its error goes to errc.
func (s *serving) run(f func() error) { go func() { s.errc <- f() }() }

// newHTTP returns an HTTP server for the client handler, closed with the
// listener. h2c makes it take HTTP/2 on connections that are not *tls.Conn.
func (s *serving) newHTTP(h2c bool) *http.Server {
	hs := &http.Server{Handler: s.h, ReadHeaderTimeout: 30 * time.Second, ErrorLog: zap.NewStdLog(s.cl.lg),
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: s.streams}}
	if h2c {
		hs.Protocols = new(http.Protocols)
		hs.Protocols.SetHTTP1(true)
		hs.Protocols.SetUnencryptedHTTP2(true)
	}
	s.cl.servers = append(s.cl.servers, hs)
	return hs
}

// routePlain splits plain connections as etcd does: HTTP/2 is gRPC, the
// rest HTTP; with one kind of traffic everything goes to its server, except
// HTTP/2 on an HTTP-only address, which etcd closes.
func (s *serving) routePlain(m cmux.CMux) {
	m.SetReadTimeout(10 * time.Second)
	switch {
	case s.cl.serveGRPC && s.cl.serveHTTP:
		grpcL, httpL := m.Match(cmux.HTTP2()), m.Match(cmux.Any())
		hs := s.newHTTP(false)
		s.run(func() error { return s.gs.Serve(grpcL) })
		s.run(func() error { return hs.Serve(httpL) })
	case s.cl.serveGRPC:
		grpcL := m.Match(cmux.Any())
		s.run(func() error { return s.gs.Serve(grpcL) })
	default:
		go rejectAll(m.Match(cmux.HTTP2()))
		httpL := m.Match(cmux.Any())
		hs := s.newHTTP(false)
		s.run(func() error { return hs.Serve(httpL) })
	}
}

// routeTLS terminates TLS on l's connections and splits them: HTTP/2 whose
// first request is gRPC to gRPC, the rest to an HTTP server that speaks
// HTTP/1.1 and HTTP/2 (see ackFilterConn).
func (s *serving) routeTLS(l net.Listener) error {
	tlsL, err := transport.NewTLSListener(l, s.cl.tlsInfo)
	if err != nil {
		return fmt.Errorf("client TLS on %s: %w", s.cl.addr, err)
	}
	switch {
	case s.cl.serveGRPC && s.cl.serveHTTP:
		m := cmux.New(tlsL)
		m.SetReadTimeout(10 * time.Second)
		grpcL := m.MatchWithWriters(cmux.HTTP2MatchHeaderFieldSendSettings("content-type", "application/grpc"))
		httpL := ackFilterListener{m.Match(cmux.Any())}
		// TLS is already terminated, so the server sees HTTP/2 over ALPN h2
		// as HTTP/2 without TLS.
		hs := s.newHTTP(true)
		s.run(func() error { return s.gs.Serve(grpcL) })
		s.run(func() error { return hs.Serve(httpL) })
		s.run(m.Serve)
	case s.cl.serveGRPC:
		s.run(func() error { return s.gs.Serve(tlsL) })
	default:
		// The connections are *tls.Conn: the server picks HTTP/2 from ALPN.
		hs := s.newHTTP(false)
		s.run(func() error { return hs.Serve(tlsL) })
	}
	return nil
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
