// Package inmem is a net.Listener whose connections live in memory, for the
// member's own gRPC clients: the JSON gateway and the self-client that the
// lock and election services run on. Such a connection never touches a
// socket, whatever the client URLs are (TLS, client-certificate
// authentication, unix sockets), and no other process can reach it.
package inmem

import (
	"context"
	"fmt"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Listener is a net.Listener whose connections live in memory: Dial makes a
// net.Pipe, hands one end to Accept and returns the other.
//
// Accept, Dial and Close may be called from any goroutine.
type Listener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// New returns an open listener.
func New() *Listener {
	return &Listener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for the next dial, or returns net.ErrClosed once Close was
// called.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and dial. Connections already made stay open until
// their ends are closed.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr names the listener; there is no address to reach it by.
func (l *Listener) Addr() net.Addr { return memAddr{} }

// Dial connects to the listener. It waits until Accept takes the
// connection, ctx ends or the listener closes. It has the signature of
// grpc.WithContextDialer's dialer; the address is ignored.
func (l *Listener) Dial(ctx context.Context, _ string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		server.Close()
		client.Close()
		return nil, &net.OpError{Op: "dial", Net: memAddr{}.Network(), Err: net.ErrClosed}
	case <-ctx.Done():
		server.Close()
		client.Close()
		return nil, ctx.Err()
	}
}

// ClientConn returns a gRPC client connection whose transports Dial l,
// with opts added. It connects lazily: the server may start serving l
// later.
func (l *Listener) ClientConn(opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts = append([]grpc.DialOption{
		grpc.WithContextDialer(l.Dial),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, opts...)
	conn, err := grpc.NewClient("passthrough:///"+memAddr{}.String(), opts...)
	if err != nil {
		return nil, fmt.Errorf("inmem: client connection: %w", err)
	}
	return conn, nil
}

// memAddr is the address of a Listener and of its connections' ends.
type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return "cairn-inmem" }
