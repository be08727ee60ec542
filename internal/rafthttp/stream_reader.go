package rafthttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// streamReader dials one stream type on one peer and reads the messages
// that peer writes to us, redialling at most every timing.redial.
//
// Threading: one goroutine (run); stop cancels it and waits.
type streamReader struct {
	t   *Transport
	p   *peer
	typ streamType

	ctx    context.Context // cancelled by stop; aborts the dial and the read
	cancel context.CancelFunc
	done   chan struct{}
}

func startStreamReader(t *Transport, p *peer, typ streamType) *streamReader {
	ctx, cancel := context.WithCancel(context.Background())
	r := &streamReader{t: t, p: p, typ: typ, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go r.run()
	return r
}

func (r *streamReader) stop() {
	r.cancel()
	<-r.done
}

func (r *streamReader) logFields() []zap.Field {
	return []zap.Field{
		zap.String("stream-reader-type", r.typ.String()),
		zap.String("local-member-id", r.t.localHex),
		zap.String("remote-peer-id", types.ID(r.p.id).String()),
	}
}

func (r *streamReader) run() {
	defer close(r.done)
	r.t.lg.Info("started stream reader with remote peer", r.logFields()...)
	defer r.t.lg.Info("stopped stream reader with remote peer", r.logFields()...)
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		start := time.Now()
		body, err := r.dial()
		switch {
		case err == nil:
			r.p.refused.Store(false)
			r.p.status.activate()
			r.t.lg.Info("established TCP streaming connection with remote peer", r.logFields()...)
			err = r.read(body)
			if r.ctx.Err() != nil {
				return
			}
			r.t.lg.Warn("lost TCP streaming connection with remote peer", append(r.logFields(), zap.Error(err))...)
			if !isClosed(err) {
				r.p.status.deactivate(failure{source: r.typ.String(), action: "read"}, err.Error())
			}
		case r.ctx.Err() != nil:
			return
		case errors.Is(err, ErrMemberRemoved):
			r.t.memberRemoved(err)
			r.t.lg.Warn("stopped dialing remote peer: this member was removed from the cluster", r.logFields()...)
			return
		case errors.Is(err, ErrUnsupportedStream):
			r.t.lg.Debug("peer does not serve this stream type", append(r.logFields(), zap.Error(err))...)
		default:
			r.p.refused.Store(errors.Is(err, syscall.ECONNREFUSED))
			r.p.status.deactivate(failure{source: r.typ.String(), action: "dial"}, err.Error())
		}
		wait.Reset(time.Until(start.Add(r.t.timing.redial)))
		select {
		case <-r.ctx.Done():
			return
		case <-wait.C:
		}
	}
}

// isClosed reports whether a read ended because the stream was closed
// cleanly (the peer ended the response, or replaced the stream), which
// does not make the peer inactive.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled)
}

// dial opens the stream; on success the caller owns the body.
func (r *streamReader) dial() (io.ReadCloser, error) {
	u := r.p.picker.pick()
	target := u
	target.Path = r.typ.path() + "/" + r.t.localHex
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		r.p.picker.unreachable(u)
		return nil, fmt.Errorf("failed to make http request to %s (%w)", u.Redacted(), err)
	}
	r.t.setRequestHeaders(req.Header)
	req.Header.Set("X-Raft-To", types.ID(r.p.id).String())
	resp, err := r.t.streamRT.RoundTrip(req)
	if err != nil {
		r.p.picker.unreachable(u)
		return nil, err
	}

	// A stream answer is used only from a peer that says which version it
	// runs and that serves this stream type (an answer without
	// X-Server-Version counts as 2.0.0, which serves none). An unparsable
	// version is refused; etcd would crash here.
	rv, err := headerVersion(resp.Header, "X-Server-Version")
	if err != nil {
		resp.Body.Close()
		r.p.picker.unreachable(u)
		return nil, fmt.Errorf("peer %s answered the stream dial with a bad X-Server-Version: %w", types.ID(r.p.id), err)
	}
	if !streamSupported(rv, r.t.serverVer, r.typ) {
		resp.Body.Close()
		r.p.picker.unreachable(u)
		return nil, fmt.Errorf("peer %s at version %s: %w", types.ID(r.p.id), rv, ErrUnsupportedStream)
	}

	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Body, nil
	case http.StatusGone:
		resp.Body.Close()
		r.p.picker.unreachable(u)
		return nil, fmt.Errorf("peer %s answered 410 to our stream dial: %w", types.ID(r.p.id), ErrMemberRemoved)
	case http.StatusNotFound:
		resp.Body.Close()
		r.p.picker.unreachable(u)
		return nil, fmt.Errorf("peer %s failed to find local node %s", types.ID(r.p.id), r.t.localHex)
	case http.StatusPreconditionFailed:
		body, err := readErrorBody(resp)
		r.p.picker.unreachable(u)
		if err != nil {
			return nil, fmt.Errorf("read answer of peer %s: %w", types.ID(r.p.id), err)
		}
		return nil, r.t.refusal(r.p.id, body, resp, true)
	default:
		resp.Body.Close()
		r.p.picker.unreachable(u)
		return nil, fmt.Errorf("unhandled http status %d", resp.StatusCode)
	}
}

// read decodes messages from body until it fails, handing each to the
// peer's receive queues. It closes body.
func (r *streamReader) read(body io.ReadCloser) error {
	defer body.Close()
	var dec decoder
	if r.typ == streamMsgAppV2 {
		dec = &msgAppV2Decoder{r: body, local: r.t.cfg.LocalID, remote: r.p.id}
	} else {
		dec = &messageDecoder{r: body}
	}
	for {
		m, err := dec.decode()
		if err != nil {
			return err
		}
		if isLinkHeartbeat(&m) {
			continue // link layer only
		}
		r.p.receive(m)
	}
}

// receive queues a message read from a stream for raft; it drops it when
// the queue is full.
func (p *peer) receive(m raftpb.Message) {
	q := p.recvc
	if m.Type == raftpb.MsgProp {
		q = p.propc
	}
	select {
	case q <- m:
	default:
		p.t.lg.Warn("dropped internal Raft message since receiving buffer is full (overloaded network)",
			zap.String("message-type", m.Type.String()),
			zap.String("local-member-id", p.t.localHex),
			zap.String("from", types.ID(m.From).String()),
			zap.String("remote-peer-id", types.ID(p.id).String()),
			zap.Bool("remote-peer-active", p.status.isActive()))
	}
}
