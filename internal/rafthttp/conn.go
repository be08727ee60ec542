package rafthttp

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Per-connection I/O timeouts on peer connections (etcd's ConnReadTimeout
// and ConnWriteTimeout): a connection silent for this long in a direction
// being read or written is broken.
const (
	connReadTimeout  = 5 * time.Second
	connWriteTimeout = 5 * time.Second
)

// NewListener wraps a peer listener so that every Read and every Write on
// an accepted connection gets a fresh 5 s deadline, as etcd's peer listener
// does (spec 1.1). A stalled peer then cannot hold a stream or a snapshot
// upload forever.
//
// The caller layers the rest as etcd does: TCP keepalive underneath (Go's
// net.Listen enables it), TLS (tls.NewListener) on top of the returned
// listener, then the HTTP server. The server must serve HTTP/1.1 only and
// must not set a WriteTimeout (streams are long-lived responses); etcd's
// ReadTimeout of 5 min is harmless.
func NewListener(l net.Listener) net.Listener {
	return &timeoutListener{Listener: l, rd: connReadTimeout, wr: connWriteTimeout}
}

type timeoutListener struct {
	net.Listener
	rd, wr time.Duration
}

func (l *timeoutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &timeoutConn{Conn: c, rd: l.rd, wr: l.wr}, nil
}

// timeoutConn re-arms a deadline before each Read and Write; zero
// durations leave that direction alone.
//
// A deadline set explicitly (SetDeadline, SetReadDeadline,
// SetWriteDeadline) still applies when it is earlier than the per-call
// one. Without this, net/http's server, which ends a request by setting a
// read deadline in the past to abort its background read, could see that
// deadline replaced by a fresh one when the background read enters Read
// just after, and its connection would hang for the whole timeout before
// serving the next request.
type timeoutConn struct {
	net.Conn
	rd, wr time.Duration

	rmu, wmu       sync.Mutex // serialise arming with explicit deadlines
	rLimit, wLimit time.Time  // explicit deadlines, zero = none; protected by rmu, wmu
}

// effective is the deadline to arm: now+d, or limit when earlier.
func effective(limit time.Time, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if !limit.IsZero() && limit.Before(t) {
		return limit
	}
	return t
}

func (c *timeoutConn) Read(b []byte) (int, error) {
	if c.rd > 0 {
		c.rmu.Lock()
		err := c.Conn.SetReadDeadline(effective(c.rLimit, c.rd))
		c.rmu.Unlock()
		if err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

func (c *timeoutConn) Write(b []byte) (int, error) {
	if c.wr > 0 {
		c.wmu.Lock()
		err := c.Conn.SetWriteDeadline(effective(c.wLimit, c.wr))
		c.wmu.Unlock()
		if err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(b)
}

func (c *timeoutConn) SetReadDeadline(t time.Time) error {
	if c.rd <= 0 {
		return c.Conn.SetReadDeadline(t)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rLimit = t
	return c.Conn.SetReadDeadline(effective(t, c.rd))
}

func (c *timeoutConn) SetWriteDeadline(t time.Time) error {
	if c.wr <= 0 {
		return c.Conn.SetWriteDeadline(t)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wLimit = t
	return c.Conn.SetWriteDeadline(effective(t, c.wr))
}

func (c *timeoutConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// newRoundTripper builds an HTTP/1.1-only client transport for peer
// requests. rd and wr are per-Read/per-Write timeouts on its connections
// (0 = none); idle is MaxIdleConnsPerHost (-1 = never reuse). Redirects are
// never followed: callers use RoundTrip directly.
//
// etcd uses two: streams with 5 s timeouts and no reuse, and one with no
// timeouts and up to 1024 idle connections per host for everything else.
func newRoundTripper(dialTimeout time.Duration, tlsClient *tls.Config, rd, wr time.Duration, idle int) *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &timeoutConn{Conn: c, rd: rd, wr: wr}, nil
		},
		TLSClientConfig:     http1TLS(tlsClient),
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: idle,
	}
	// HTTP/1.1 only: etcd's peer listener accepts h2 in TLS and then
	// answers nothing (spec 1.1).
	var p http.Protocols
	p.SetHTTP1(true)
	tr.Protocols = &p
	return tr
}

// http1TLS returns a copy of c that offers no "h2" in ALPN, or nil for nil.
func http1TLS(c *tls.Config) *tls.Config {
	if c == nil {
		return nil
	}
	c = c.Clone()
	c.NextProtos = slices.DeleteFunc(slices.Clone(c.NextProtos), func(p string) bool { return p == "h2" })
	return c
}
