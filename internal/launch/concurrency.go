package launch

import (
	"fmt"

	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/cairnkv/cairn/internal/api/inmem"
	"github.com/cairnkv/cairn/internal/api/v3concurrency"
)

// concurrencyServices are the lock and election services of one member and
// the self-client they run on: a connection to the member's own gRPC
// server over an in-memory listener, as the gateway's.
type concurrencyServices struct {
	l      *inmem.Listener
	conn   *grpc.ClientConn
	served chan struct{}
	stop   func() error
}

// registerConcurrency registers the lock and election services on gs and
// serves gs on their in-memory listener. Call it after every other
// service is registered and before gs serves anything else.
func registerConcurrency(gs *grpc.Server, lg *zap.Logger) (*concurrencyServices, error) {
	l := inmem.New()
	conn, err := l.ClientConn()
	if err != nil {
		return nil, fmt.Errorf("lock and election services: %w", err)
	}
	cli := v3concurrency.NewClient(conn, lg)
	v3concurrency.RegisterLock(gs, v3concurrency.NewLockServer(cli))
	v3concurrency.RegisterElection(gs, v3concurrency.NewElectionServer(cli))
	cs := &concurrencyServices{l: l, conn: conn, served: make(chan struct{}), stop: cli.Close}
	go func() {
		defer close(cs.served)
		if err := gs.Serve(l); !isClosed(err) {
			lg.Warn("lock and election services' in-memory gRPC listener stopped", zap.Error(err))
		}
	}()
	return cs, nil
}

// close ends the self-client and the listener; calls in flight fail.
func (cs *concurrencyServices) close() {
	_ = cs.stop()
	_ = cs.conn.Close()
	_ = cs.l.Close()
	<-cs.served
}
