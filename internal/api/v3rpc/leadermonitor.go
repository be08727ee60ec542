package v3rpc

import (
	"context"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
)

// maxNoLeaderTimeouts is how many election timeouts in a row a member may
// go without a leader before it ends the streams whose clients require one
// (etcd's maxNoLeaderCnt): reconnecting a stream costs more than refusing
// a new request, so streams get the longer grace.
const maxNoLeaderTimeouts = 3

// leaderMonitor ends, with etcd's "no leader" error, the streams (watches)
// of clients that asked for a leader, once the member has had none for
// maxNoLeaderTimeouts election timeouts. Its goroutine runs only while
// such streams exist.
type leaderMonitor struct {
	m        Member
	interval time.Duration

	mu      sync.Mutex
	streams map[*leaderStream]struct{}
	running bool
}

// leaderStream is a stream whose context the monitor can end.
type leaderStream struct {
	grpc.ServerStream
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func (s *leaderStream) Context() context.Context { return s.ctx }

func newLeaderMonitor(m Member, electionTimeout time.Duration) *leaderMonitor {
	if electionTimeout <= 0 {
		electionTimeout = time.Second
	}
	return &leaderMonitor{m: m, interval: electionTimeout, streams: map[*leaderStream]struct{}{}}
}

// add starts watching ss; the caller must remove the returned stream.
func (lm *leaderMonitor) add(ss grpc.ServerStream) *leaderStream {
	ctx, cancel := context.WithCancelCause(ss.Context())
	ls := &leaderStream{ServerStream: ss, ctx: ctx, cancel: cancel}
	lm.mu.Lock()
	lm.streams[ls] = struct{}{}
	if !lm.running {
		lm.running = true
		go lm.run()
	}
	lm.mu.Unlock()
	return ls
}

func (lm *leaderMonitor) remove(ls *leaderStream) {
	lm.mu.Lock()
	delete(lm.streams, ls)
	lm.mu.Unlock()
	ls.cancel(nil)
}

func (lm *leaderMonitor) run() {
	t := time.NewTicker(lm.interval)
	defer t.Stop()
	missed := 0
	for range t.C {
		if lm.m.Leader() == 0 {
			missed++
		} else {
			missed = 0
		}
		lm.mu.Lock()
		if missed >= maxNoLeaderTimeouts {
			for ls := range lm.streams {
				ls.cancel(rpctypes.ErrGRPCNoLeader)
				delete(lm.streams, ls)
			}
		}
		if len(lm.streams) == 0 {
			lm.running = false
			lm.mu.Unlock()
			return
		}
		lm.mu.Unlock()
	}
}
