package v3concurrency

import (
	"context"
	"errors"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc"
)

// ErrMissingLeaderKey refuses a Proclaim or Resign without its leader
// field, with etcd's text.
var ErrMissingLeaderKey = errors.New(`"leader" field must be provided`)

// electionServer serves v3electionpb.Election on c, a client of the
// member itself.
type electionServer struct{ c *clientv3.Client }

// NewElectionServer returns the election service running on c.
func NewElectionServer(c *clientv3.Client) ElectionServer { return electionServer{c: c} }

var _ ElectionServer = electionServer{}

// Campaign waits until the campaigner's key (on req.Lease, holding
// req.Value) is the oldest of the election, and returns the leadership.
func (s electionServer) Campaign(ctx context.Context, req *CampaignRequest) (*CampaignResponse, error) {
	sess, err := session(ctx, s.c, req.Lease)
	if err != nil {
		return nil, err
	}
	e := concurrency.NewElection(sess, string(req.Name))
	if err := e.Campaign(ctx, string(req.Value)); err != nil {
		return nil, err
	}
	return &CampaignResponse{
		Header: e.Header(),
		Leader: &LeaderKey{Name: req.Name, Key: []byte(e.Key()), Rev: e.Rev(), Lease: int64(sess.Lease())},
	}, nil
}

// Proclaim sets the value of a leadership that still holds
// ("election: not leader" otherwise).
func (s electionServer) Proclaim(ctx context.Context, req *ProclaimRequest) (*ProclaimResponse, error) {
	e, err := s.resume(ctx, req.Leader)
	if err != nil {
		return nil, err
	}
	if err := e.Proclaim(ctx, string(req.Value)); err != nil {
		return nil, err
	}
	return &ProclaimResponse{Header: e.Header()}, nil
}

// Resign ends a leadership (deletes its key if it is still that
// leadership's); resigning one that is gone succeeds.
func (s electionServer) Resign(ctx context.Context, req *ResignRequest) (*ResignResponse, error) {
	e, err := s.resume(ctx, req.Leader)
	if err != nil {
		return nil, err
	}
	if err := e.Resign(ctx); err != nil {
		return nil, err
	}
	return &ResignResponse{Header: e.Header()}, nil
}

// resume rebuilds the election a LeaderKey names.
func (s electionServer) resume(ctx context.Context, l *LeaderKey) (*concurrency.Election, error) {
	if l == nil {
		return nil, ErrMissingLeaderKey
	}
	sess, err := session(ctx, s.c, l.Lease)
	if err != nil {
		return nil, err
	}
	return concurrency.ResumeElection(sess, string(l.Name), string(l.Key), l.Rev), nil
}

// Leader returns the current leader's key and value ("election: no
// leader" when nobody campaigns).
func (s electionServer) Leader(ctx context.Context, req *LeaderRequest) (*LeaderResponse, error) {
	sess, err := session(ctx, s.c, -1)
	if err != nil {
		return nil, err
	}
	resp, err := concurrency.NewElection(sess, string(req.Name)).Leader(ctx)
	if err != nil {
		return nil, err
	}
	return &LeaderResponse{Header: resp.Header, Kv: resp.Kvs[0]}, nil
}

// Observe sends the leader, once there is one, and then every change of
// leader or of its value. The stream ends without error when the recipe's
// observation ends (a read or watch of the member failed), and with the
// context's error when the client goes away.
func (s electionServer) Observe(req *LeaderRequest, stream grpc.ServerStreamingServer[LeaderResponse]) error {
	ctx := stream.Context()
	sess, err := session(ctx, s.c, -1)
	if err != nil {
		return err
	}
	ch := concurrency.NewElection(sess, string(req.Name)).Observe(ctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-ch:
			if !ok {
				return nil
			}
			if err := stream.Send(&LeaderResponse{Header: resp.Header, Kv: resp.Kvs[0]}); err != nil {
				return err
			}
		}
	}
}
