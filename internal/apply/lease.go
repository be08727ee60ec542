package apply

import (
	"fmt"
	"strconv"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/internal/lease"
)

// SetLessor installs the lessor lease requests are applied through; it must
// be the one the store reports attachments to (mvcc.Config.Lessor). Without
// one, lease requests are unsupported entries. persistCheckpoints is etcd's
// LeaseCheckpointPersist gate: checkpoints are written to bucket `lease`
// with it, or once the cluster version is 3.6 or later, as in etcd.
func (a *Applier) SetLessor(l *lease.Lessor, persistCheckpoints bool) {
	a.lessor, a.persistCheckpoints = l, persistCheckpoints
}

// leaseGrant applies a LeaseGrant with etcd's results: the granted ID and
// TTL (raised to the minimum), or lease.ErrNotFound (ID 0),
// lease.ErrExists, lease.ErrTTLTooLarge. The record is written in the
// entry's backend transaction.
func (a *Applier) leaseGrant(e raftpb.Entry, r *pb.LeaseGrantRequest) Result {
	w := a.kv.Write()
	ttl, err := a.lessor.Grant(r.ID, r.TTL, w.BackendTx())
	a.end(w, e)
	if err != nil {
		return Result{Err: err}
	}
	return Result{Resp: &pb.LeaseGrantResponse{Header: &pb.ResponseHeader{Revision: a.kv.Rev()}, ID: r.ID, TTL: ttl}}
}

// leaseRevoke deletes every key attached to the lease, in key order, and the
// lease record, in one backend transaction and one revision (none when the
// lease had no keys), as etcd does; lease.ErrNotFound for an unknown lease.
func (a *Applier) leaseRevoke(e raftpb.Entry, r *pb.LeaseRevokeRequest) Result {
	keys, err := a.lessor.RevokeKeys(r.ID)
	if err != nil {
		a.recordIndex(e)
		return Result{Err: err}
	}
	w := a.kv.Write()
	for _, k := range keys {
		if _, _, err := w.DeleteRange([]byte(k), nil); err != nil {
			err = fmt.Errorf("revoke lease %016x: %w", r.ID, err)
			a.end(w, e)
			return Result{Err: err}
		}
	}
	err = a.lessor.Remove(r.ID, w.BackendTx())
	a.end(w, e)
	if err != nil {
		return Result{Err: err}
	}
	return Result{Resp: &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: a.kv.Rev()}}}
}

// leaseCheckpoint records the leader's checkpoints of remaining TTLs
// (unknown leases are skipped, as etcd does).
func (a *Applier) leaseCheckpoint(e raftpb.Entry, r *pb.LeaseCheckpointRequest) Result {
	persist := a.persistCheckpoints || versionAtLeast(a.cl.Version(), 3, 6)
	w := a.kv.Write()
	var err error
	for _, c := range r.Checkpoints {
		if err = a.lessor.Checkpoint(c.ID, c.Remaining_TTL, persist, w.BackendTx()); err != nil {
			break
		}
	}
	a.end(w, e)
	return Result{Resp: &pb.LeaseCheckpointResponse{Header: &pb.ResponseHeader{Revision: a.kv.Rev()}}, Err: err}
}

// versionAtLeast reports whether the "major.minor[.patch]" version v is at
// least major.minor; false for "" (not decided yet) or anything unparsable.
func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
