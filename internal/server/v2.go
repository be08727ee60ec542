package server

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/v2store"
)

// v2SweepInterval is how often the leader looks for expired v2 keys (etcd's
// SYNC interval).
const v2SweepInterval = 500 * time.Millisecond

// openV2 builds the v2 tree from the backend's v2 bucket and hands it to
// the applier. Called at start and after a leader's snapshot replaced the
// backend.
func (s *Server) openV2() error {
	if s.v2 == nil {
		s.v2 = v2store.New()
	}
	v := s.be.Read()
	defer v.End()
	if err := s.v2.Load(func(fn func(k, v []byte) bool) { v.ForEach(v2store.Bucket, fn) }); err != nil {
		return err
	}
	s.applier.SetV2(s.v2)
	return nil
}

// V2Store is the v2 tree, for reads.
func (s *Server) V2Store() *v2store.Store { return s.v2 }

// V2Write proposes a v2 write and returns its event, or a *v2store.Error.
func (s *Server) V2Write(ctx context.Context, r *v2store.Request) (*v2store.Event, error) {
	t, err := v2store.Carrier(r)
	if err != nil {
		return nil, err
	}
	resp, err := s.propose(ctx, &pb.InternalRaftRequest{Txn: t})
	if err != nil {
		return nil, err
	}
	return resp.(*v2store.Event), nil
}

// startV2Expiry runs the leader's expiry sweep: while this member leads
// and a v2 key's expiration has passed, it proposes an expire request
// carrying its clock, so every member removes the same keys.
func (s *Server) startV2Expiry() {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		t := time.NewTicker(v2SweepInterval)
		defer t.Stop()
		for {
			select {
			case <-s.stopping:
				return
			case <-t.C:
			}
			first, ok := s.v2.HasTTL()
			now := time.Now()
			if !ok || first.After(now) || !s.IsLeader() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := s.V2Write(ctx, &v2store.Request{Op: v2store.OpExpire, Time: now.UnixNano()}); err != nil {
				s.lg.Warn("v2 expiry sweep failed", zap.Error(err))
			}
			cancel()
		}
	}()
}
