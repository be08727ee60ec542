package rafthttp

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// Receive queue lengths (etcd's recvBufSize and maxPendingProposals).
const (
	recvQueue = 4096
	propQueue = 4096
)

// Names of the channels a message can take, for log lines.
const (
	chanMsgAppV2 = "streamMsgAppV2"
	chanMessage  = "streamMsg"
	chanPipeline = "pipeline"
)

// peer is everything the transport runs for one member of the cluster:
// two stream writers (the peer reads them), two stream readers (we dial
// the peer and read), a pipeline, and two goroutines handing received
// messages to raft (proposals apart, so a MsgProp waiting for a leader
// does not hold up the rest).
//
// Threading: send and attach may be called from any goroutine; stop once.
type peer struct {
	t      *Transport
	id     uint64
	status *peerStatus
	picker *urlPicker

	msgWriter, appWriter *streamWriter
	pipeline             *pipeline
	msgReader, appReader *streamReader

	recvc, propc chan raftpb.Message

	// refused is set when the last dial of one of its streams was refused
	// (nothing listens at the peer's URL: its process is gone) and cleared
	// when a stream is established (PeerRefused).
	refused atomic.Bool

	ctx    context.Context // cancelled by stop; ends the receive goroutines
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startPeer(t *Transport, id uint64, urls []url.URL) *peer {
	t.lg.Info("starting remote peer", zap.String("remote-peer-id", types.ID(id).String()))
	ctx, cancel := context.WithCancel(context.Background())
	p := &peer{
		t:      t,
		id:     id,
		status: newPeerStatus(t.lg, id),
		picker: newURLPicker(urls),
		recvc:  make(chan raftpb.Message, recvQueue),
		propc:  make(chan raftpb.Message, propQueue),
		ctx:    ctx,
		cancel: cancel,
	}
	p.pipeline = startPipeline(t, id, p.picker, p.status)
	p.msgWriter = startStreamWriter(t, id, streamMessage, p.status)
	p.appWriter = startStreamWriter(t, id, streamMsgAppV2, p.status)
	p.wg.Add(2)
	go p.deliver(p.recvc)
	go p.deliver(p.propc)
	p.appReader = startStreamReader(t, p, streamMsgAppV2)
	p.msgReader = startStreamReader(t, p, streamMessage)
	t.lg.Info("started remote peer", zap.String("remote-peer-id", types.ID(id).String()))
	return p
}

// deliver hands queued messages to raft until the peer stops.
func (p *peer) deliver(q <-chan raftpb.Message) {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case m := <-q:
			if err := p.t.process(p.ctx, m); err != nil && p.ctx.Err() == nil {
				p.t.lg.Warn("failed to process Raft message", zap.String("remote-peer-id", types.ID(p.id).String()), zap.Error(err))
			}
		}
	}
}

// send queues m on the channel spec 3.4 picks: MsgApp on the msgappv2
// stream if attached, otherwise the message stream if attached, otherwise
// the pipeline. It never blocks; a full queue drops m and tells raft the
// peer is unreachable.
func (p *peer) send(m raftpb.Message) {
	q, name := p.pick(&m)
	ok := false
	if q != nil {
		select {
		case q <- m:
			ok = true
		default:
		}
	} else {
		ok = p.pipeline.send(m)
	}
	if ok {
		return
	}
	p.t.rep.unreachable(m.To)
	p.t.lg.Warn("dropped internal Raft message since sending buffer is full",
		zap.String("message-type", m.Type.String()),
		zap.String("local-member-id", p.t.localHex),
		zap.String("from", types.ID(m.From).String()),
		zap.String("remote-peer-id", types.ID(p.id).String()),
		zap.String("remote-peer-name", name),
		zap.Bool("remote-peer-active", p.status.isActive()))
}

// pick returns the stream queue for m, or nil for the pipeline.
func (p *peer) pick(m *raftpb.Message) (chan<- raftpb.Message, string) {
	if m.Type == raftpb.MsgApp {
		if q, ok := p.appWriter.writec(); ok {
			return q, chanMsgAppV2
		}
	}
	if q, ok := p.msgWriter.writec(); ok {
		return q, chanMessage
	}
	return nil, chanPipeline
}

// attach gives a stream the peer opened on us to the writer of its type.
// False when the peer is stopping.
func (p *peer) attach(c *outgoingConn) bool {
	if c.typ == streamMsgAppV2 {
		return p.appWriter.attach(c)
	}
	return p.msgWriter.attach(c)
}

func (p *peer) update(urls []url.URL) { p.picker.update(urls) }

// stop ends every goroutine of the peer and waits for them.
func (p *peer) stop() {
	p.t.lg.Info("stopping remote peer", zap.String("remote-peer-id", types.ID(p.id).String()))
	p.cancel()
	p.msgWriter.stop()
	p.appWriter.stop()
	p.pipeline.stop()
	p.msgReader.stop()
	p.appReader.stop()
	p.wg.Wait()
	p.t.lg.Info("stopped remote peer", zap.String("remote-peer-id", types.ID(p.id).String()))
}

// remote is a member we talk to through the pipeline only: one that
// contacted us before we knew it as a peer (a member joining the cluster
// whose addition we have not applied yet), registered from its
// X-PeerURLs.
type remote struct {
	t        *Transport
	id       uint64
	status   *peerStatus
	pipeline *pipeline
}

func startRemote(t *Transport, id uint64, urls []url.URL) *remote {
	status := newPeerStatus(t.lg, id)
	return &remote{t: t, id: id, status: status, pipeline: startPipeline(t, id, newURLPicker(urls), status)}
}

func (r *remote) send(m raftpb.Message) {
	if r.pipeline.send(m) {
		return
	}
	r.t.rep.unreachable(m.To)
	r.t.lg.Warn("dropped internal Raft message since sending buffer is full (overloaded network)",
		zap.String("message-type", m.Type.String()),
		zap.String("local-member-id", r.t.localHex),
		zap.String("from", types.ID(m.From).String()),
		zap.String("remote-peer-id", types.ID(r.id).String()),
		zap.Bool("remote-peer-active", r.status.isActive()))
}

func (r *remote) stop() { r.pipeline.stop() }
