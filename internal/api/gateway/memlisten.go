package gateway

import (
	"context"
	"net"
	"sync"
)

// memListener is a net.Listener whose connections live in memory: dial
// makes a net.Pipe, hands one end to Accept and returns the other. The
// gateway's gRPC client dials the member's own gRPC server through it, so
// that connection never touches a socket, whatever the client URLs are
// (TLS, client-certificate authentication, unix sockets), and no other
// process can reach it.
//
// Accept, dial and Close may be called from any goroutine.
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for the next dial, or returns net.ErrClosed once Close was
// called.
func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and dial. Connections already made stay open until
// their ends are closed.
func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr names the listener; there is no address to reach it by.
func (l *memListener) Addr() net.Addr { return memAddr{} }

// dial connects to the listener. It waits until Accept takes the
// connection, ctx ends or the listener closes. It has the signature of
// grpc.WithContextDialer's dialer; the address is ignored.
func (l *memListener) dial(ctx context.Context, _ string) (net.Conn, error) {
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

// memAddr is the address of a memListener and of its connections' ends.
type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return "cairn-gateway" }
