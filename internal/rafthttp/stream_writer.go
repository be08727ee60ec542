package rafthttp

import (
	"io"
	"net/http"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// streamQueue is a stream writer's queue length (etcd's streamBufSize).
// The writer flushes after a message when the queue is empty or more than
// half of this is unflushed.
const streamQueue = 4096

// outgoingConn is the body of a stream GET a peer opened on us: the peer
// reads, we write. The stream handler creates it and blocks until the
// writer releases it, so the ResponseWriter stays valid while the writer
// uses it.
type outgoingConn struct {
	typ streamType
	w   io.Writer
	rc  *http.ResponseController

	mu      sync.Mutex // protects aborted and the write deadline
	aborted bool

	released chan struct{} // closed when the writer no longer uses w
	once     sync.Once
}

func newOutgoingConn(typ streamType, w http.ResponseWriter) *outgoingConn {
	return &outgoingConn{typ: typ, w: w, rc: http.NewResponseController(w), released: make(chan struct{})}
}

// arm gives the next write connWriteTimeout, unless the conn was aborted.
func (c *outgoingConn) arm() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aborted {
		return errAborted
	}
	_ = c.rc.SetWriteDeadline(time.Now().Add(connWriteTimeout)) // unsupported by test recorders only
	return nil
}

// abort makes a write in progress (and every later one) fail at once.
// Safe to call from any goroutine.
func (c *outgoingConn) abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.aborted = true
	_ = c.rc.SetWriteDeadline(time.Now())
}

// release hands the connection back to the stream handler; a healthy one
// loses its write deadline, so the server can end the response.
func (c *outgoingConn) release() {
	c.once.Do(func() {
		c.mu.Lock()
		if !c.aborted {
			_ = c.rc.SetWriteDeadline(time.Time{})
		}
		c.mu.Unlock()
		close(c.released)
	})
}

// streamWriter writes one peer's messages of one stream type to the
// connection the peer most recently opened on us.
//
// Threading: one goroutine (run) owns the connection and the encoder.
// writec may be called from any goroutine; attach from the stream handler.
type streamWriter struct {
	t      *Transport
	peerID uint64
	typ    streamType
	status *peerStatus

	mu      sync.Mutex          // protects msgc, working and conn
	msgc    chan raftpb.Message // replaced (queued messages dropped) when a connection ends
	working bool                // a connection is attached
	conn    *outgoingConn

	connc chan *outgoingConn
	stopc chan struct{}
	done  chan struct{}
}

func startStreamWriter(t *Transport, peerID uint64, typ streamType, status *peerStatus) *streamWriter {
	w := &streamWriter{
		t: t, peerID: peerID, typ: typ, status: status,
		msgc:  make(chan raftpb.Message, streamQueue),
		connc: make(chan *outgoingConn),
		stopc: make(chan struct{}),
		done:  make(chan struct{}),
	}
	go w.run()
	return w
}

// writec returns the queue to put messages on and whether a connection is
// attached (otherwise the caller should pick another channel).
func (w *streamWriter) writec() (chan<- raftpb.Message, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.msgc, w.working
}

// attach hands c to the writer; false when the writer has stopped.
func (w *streamWriter) attach(c *outgoingConn) bool {
	select {
	case w.connc <- c:
		return true
	case <-w.done:
		return false
	}
}

// stop releases the connection and waits for the writer to end.
func (w *streamWriter) stop() {
	close(w.stopc)
	w.mu.Lock()
	if w.conn != nil {
		w.conn.abort()
	}
	w.mu.Unlock()
	<-w.done
}

func (w *streamWriter) logFields() []zap.Field {
	return []zap.Field{
		zap.String("stream-writer-type", w.typ.String()),
		zap.String("local-member-id", w.t.localHex),
		zap.String("remote-peer-id", types.ID(w.peerID).String()),
	}
}

func (w *streamWriter) run() {
	defer close(w.done)
	w.t.lg.Info("started stream writer with remote peer", w.logFields()...)
	ticker := time.NewTicker(w.t.timing.heartbeat)
	defer ticker.Stop()
	var (
		conn    *outgoingConn
		enc     encoder
		msgc    chan raftpb.Message // nil while detached
		beat    <-chan time.Time    // nil while detached
		batched int                 // messages written since the last flush
		m       raftpb.Message      // the message being written (one variable: write takes its address)
	)
	for {
		select {
		case <-beat:
			if err := w.write(conn, enc, &linkHeartbeat, true); err != nil {
				if w.stopping() {
					continue
				}
				w.lost(conn, "heartbeat", err)
				conn, msgc, beat = nil, nil, nil
				continue
			}
			batched = 0
		case m = <-msgc:
			flush := len(msgc) == 0 || batched > streamQueue/2
			if err := w.write(conn, enc, &m, flush); err != nil {
				if w.stopping() {
					continue
				}
				w.lost(conn, "write", err)
				w.t.rep.unreachable(m.To)
				conn, msgc, beat = nil, nil, nil
				continue
			}
			if flush {
				batched = 0
			} else {
				batched++
			}
		case c := <-w.connc:
			replaced := w.swap(c)
			if c.typ == streamMsgAppV2 {
				enc = &msgAppV2Encoder{w: c.w}
			} else {
				enc = &messageEncoder{w: c.w}
			}
			if replaced {
				w.t.lg.Warn("closed TCP streaming connection with remote peer", w.logFields()...)
			}
			w.status.activate()
			w.t.lg.Info("established TCP streaming connection with remote peer", w.logFields()...)
			conn, batched = c, 0
			w.mu.Lock()
			msgc = w.msgc
			w.mu.Unlock()
			beat = ticker.C
		case <-w.stopc:
			if w.detach(nil) {
				w.t.lg.Warn("closed TCP streaming connection with remote peer", w.logFields()...)
			}
			w.t.lg.Info("stopped TCP streaming connection with remote peer", w.logFields()...)
			return
		}
	}
}

// stopping reports whether stop was called: a write failing then is the
// writer's own doing, not the peer's.
func (w *streamWriter) stopping() bool {
	select {
	case <-w.stopc:
		return true
	default:
		return false
	}
}

// write encodes m and, when flush is set, sends everything buffered.
func (w *streamWriter) write(c *outgoingConn, enc encoder, m *raftpb.Message, flush bool) error {
	if err := c.arm(); err != nil {
		return err
	}
	if err := enc.encode(m); err != nil {
		return err
	}
	if flush {
		return c.rc.Flush()
	}
	return nil
}

// swap attaches c, releasing the connection it replaces (reported true).
func (w *streamWriter) swap(c *outgoingConn) bool {
	replaced := w.detach(nil)
	w.mu.Lock()
	w.conn, w.working = c, true
	w.mu.Unlock()
	return replaced
}

// detach releases the attached connection, if any (or only c, when c is
// not nil and still attached), and drops the queued messages: they were
// meant for that connection and raft resends. Reports whether one was
// attached.
func (w *streamWriter) detach(c *outgoingConn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil || (c != nil && w.conn != c) {
		return false
	}
	w.conn.release()
	w.conn, w.working = nil, false
	if len(w.msgc) > 0 {
		w.t.rep.unreachable(w.peerID)
	}
	w.msgc = make(chan raftpb.Message, streamQueue)
	return true
}

// lost handles a failed write on c.
func (w *streamWriter) lost(c *outgoingConn, action string, err error) {
	c.abort()
	w.detach(c)
	w.status.deactivate(failure{source: w.typ.String(), action: action}, err.Error())
	w.t.lg.Warn("lost TCP streaming connection with remote peer", append(w.logFields(), zap.Error(err))...)
}
