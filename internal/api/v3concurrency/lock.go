package v3concurrency

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// lockServer serves v3lockpb.Lock on c, a client of the member itself.
type lockServer struct{ c *clientv3.Client }

// NewLockServer returns the lock service running on c.
func NewLockServer(c *clientv3.Client) LockServer { return lockServer{c: c} }

var _ LockServer = lockServer{}

// Lock waits until the lock req.Name is held by a key on req.Lease, and
// returns that key. A caller that goes away while waiting leaves no key.
func (s lockServer) Lock(ctx context.Context, req *LockRequest) (*LockResponse, error) {
	sess, err := session(ctx, s.c, req.Lease)
	if err != nil {
		return nil, err
	}
	m := concurrency.NewMutex(sess, string(req.Name))
	if err := m.Lock(ctx); err != nil {
		return nil, err
	}
	return &LockResponse{Header: m.Header(), Key: []byte(m.Key())}, nil
}

// Unlock deletes the lock's key, so the next waiter takes the lock.
// Deleting a key that does not exist succeeds, as in etcd.
func (s lockServer) Unlock(ctx context.Context, req *UnlockRequest) (*UnlockResponse, error) {
	resp, err := s.c.Delete(ctx, string(req.Key))
	if err != nil {
		return nil, err
	}
	return &UnlockResponse{Header: resp.Header}, nil
}

// session is a concurrency session on lease that this member never keeps
// alive: the lease belongs to the caller. Lease 0 grants a new lease of the
// recipes' default TTL (60 s); a negative lease names none, for calls that
// only read (Leader, Observe).
func session(ctx context.Context, c *clientv3.Client, lease int64) (*concurrency.Session, error) {
	s, err := concurrency.NewSession(c, concurrency.WithLease(clientv3.LeaseID(lease)), concurrency.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	s.Orphan() // stop the session's keep-alive at once
	return s, nil
}
