package rafthttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// Pipeline sizes (etcd's connPerPipeline and pipelineBufSize).
const (
	pipelineWorkers = 4
	pipelineQueue   = 64
)

// pipeline sends messages to one peer as POST /raft requests, one request
// per message, pipelineWorkers at a time. It is the path used before the
// streams are up, while they are down, and for remotes.
//
// Threading: send may be called from any goroutine; workers own the
// requests; stop waits for them.
type pipeline struct {
	t      *Transport
	peerID uint64
	picker *urlPicker
	status *peerStatus

	msgc   chan raftpb.Message // never closed; workers leave on ctx
	ctx    context.Context     // cancelled by stop; aborts requests in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startPipeline(t *Transport, peerID uint64, picker *urlPicker, status *peerStatus) *pipeline {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipeline{
		t: t, peerID: peerID, picker: picker, status: status,
		msgc: make(chan raftpb.Message, pipelineQueue),
		ctx:  ctx, cancel: cancel,
	}
	p.wg.Add(pipelineWorkers)
	for range pipelineWorkers {
		go p.worker()
	}
	t.lg.Info("started HTTP pipelining with remote peer",
		zap.String("local-member-id", t.localHex),
		zap.String("remote-peer-id", types.ID(peerID).String()))
	return p
}

// send queues m; it reports false when the queue is full (m is dropped).
func (p *pipeline) send(m raftpb.Message) bool {
	select {
	case p.msgc <- m:
		return true
	default:
		return false
	}
}

func (p *pipeline) stop() {
	p.cancel()
	p.wg.Wait()
	p.t.lg.Info("stopped HTTP pipelining with remote peer",
		zap.String("local-member-id", p.t.localHex),
		zap.String("remote-peer-id", types.ID(p.peerID).String()))
}

func (p *pipeline) worker() {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case m := <-p.msgc:
			err := p.post(&m)
			if err == nil {
				p.status.activate()
				continue
			}
			if p.ctx.Err() != nil {
				return
			}
			p.status.deactivate(failure{source: pipelineSource, action: "write"}, err.Error())
			p.t.rep.unreachable(m.To)
			if errors.Is(err, ErrMemberRemoved) {
				p.t.memberRemoved(err)
			}
		}
	}
}

// post sends one message and reads the answer.
func (p *pipeline) post(m *raftpb.Message) error {
	data, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("marshal %s: %w", m.Type, err)
	}
	u := p.picker.pick()
	target := u
	target.Path = "/raft"
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, target.String(), bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("pipeline request to %s: %w", u.Redacted(), err)
	}
	req.Header.Set("Content-Type", "application/protobuf")
	p.t.setRequestHeaders(req.Header)
	resp, err := p.t.pipelineRT.RoundTrip(req)
	if err != nil {
		p.picker.unreachable(u)
		return err
	}
	if err := p.t.checkPostResponse(p.peerID, resp); err != nil {
		p.picker.unreachable(u)
		return err
	}
	return nil
}
