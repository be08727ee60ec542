// Package apply turns committed raft entries into state-machine changes,
// deterministically: the same entries applied to the same state give the
// same state and the same results on every member, cairn or etcd. It never
// reads the clock, draws random numbers or touches the network.
//
// Threading: an Applier is used by one goroutine (the server's apply loop).
//
// Atomicity: each entry's effects and the consistent index (the entry's
// index and term) are written in one backend transaction, so after a crash
// the backend is either before or after the entry, never half-way, and
// replay skips exactly the entries the backend already holds.
package apply

import (
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/cairnkv/cairn/internal/lease"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/mvcc"
	"github.com/cairnkv/cairn/internal/txn"
	"github.com/cairnkv/cairn/internal/v2store"
)

// Result is the outcome of one client request, handed to its waiter.
type Result struct {
	Resp any
	Err  error
	// Physical is closed when a compaction's physical deletion is done.
	Physical <-chan struct{}
}

// ErrUnsupported is the result of an entry holding a request kind cairn does
// not apply yet (an *UnsupportedError). The entry is not consumed: the
// consistent index stays before it, and the server must stop rather than go
// on with a state etcd would not have built.
var ErrUnsupported = errors.New("apply: request kind not supported yet")

// ErrNoSpace refuses a write while the NOSPACE alarm is active.
var ErrNoSpace = errors.New("apply: database space exceeded")

// ErrCorrupt refuses puts, deletes, txns and compactions while a CORRUPT
// alarm is active (etcd's "etcdserver: corrupt cluster").
var ErrCorrupt = errors.New("apply: corrupt cluster")

// Applier applies committed entries to the state machine.
type Applier struct {
	lg *zap.Logger
	kv *mvcc.Store
	cl *membership.Cluster
	// consistentIndex is the index of the last entry whose effects are in
	// the backend. Entries at or below it are replayed for raft's sake only.
	// Invariant: consistentIndex >= every index whose effects were written.
	consistentIndex uint64
	exec            *txn.Executor
	alarms          *Alarms
	// local, when set, hands back the decoded requests this member
	// proposed, so their entries need not be decoded again.
	local Proposals
	// v2 is the v2 key tree fed from carrier txns (v2.go); nil: none.
	v2 *v2store.Store
	// lessor applies lease requests (lease.go); nil: they are unsupported.
	lessor             *lease.Lessor
	persistCheckpoints bool
}

// Proposals gives the applier the requests this member proposed itself.
type Proposals interface {
	// Proposal returns the request proposed locally under id, or nil. The
	// request must equal what the entry's data decodes to, and nobody may
	// modify it.
	Proposal(id uint64) *pb.InternalRaftRequest
}

// SetProposals installs the local proposal lookup.
func (a *Applier) SetProposals(p Proposals) { a.local = p }

// New returns an Applier whose backend holds entries up to consistentIndex.
func New(lg *zap.Logger, kv *mvcc.Store, cl *membership.Cluster, alarms *Alarms, consistentIndex uint64, exec *txn.Executor) *Applier {
	return &Applier{lg: lg, kv: kv, cl: cl, alarms: alarms, consistentIndex: consistentIndex, exec: exec}
}

// Restore sets the consistent index after the state machine was replaced
// by a snapshot whose database holds entries up to index.
func (a *Applier) Restore(index uint64) { a.consistentIndex = index }

// ConsistentIndex is the index of the last entry recorded in the backend.
func (a *Applier) ConsistentIndex() uint64 { return a.consistentIndex }

// Normal applies an EntryNormal. It returns the request ID to wake (0 when
// there is none) and the result.
func (a *Applier) Normal(e raftpb.Entry) (uint64, Result) {
	replay := e.Index <= a.consistentIndex
	if len(e.Data) == 0 {
		// A new leader's empty entry.
		if !replay {
			a.recordIndex(e)
		}
		return 0, Result{}
	}
	var req *pb.InternalRaftRequest
	var id uint64
	if a.local != nil && !replay {
		if hid, ok := headerID(e.Data); ok && hid != 0 {
			id, req = hid, a.local.Proposal(hid)
		}
	}
	if req == nil {
		r, err := decode(e)
		if err != nil && !(r != nil && !replay && a.alarms.noSpace() && growsStore(r)) {
			// (Under NOSPACE a lease grant is refused as etcd refuses it,
			// below, so it is applied as etcd applies it.)
			if replay {
				// The backend already holds what etcd made of it.
				return 0, Result{}
			}
			// Not consumed: the consistent index stays before it and the
			// server stops (see UnsupportedError).
			hid, _ := headerID(e.Data)
			return hid, Result{Err: err}
		}
		req = r
		id = req.ID
		if req.Header != nil && req.Header.ID != 0 {
			id = req.Header.ID
		}
	}
	if replay {
		a.replayNormal(req)
		// No proposer waits for a replayed entry unless the backend got
		// ahead of the WAL (a disk that lost fsynced writes, the
		// ack-before-fsync seeded bug): a new proposal then landed at an
		// index the backend claims. It is not woken with an empty result
		// (its handler would fail on it); like etcd, it times out.
		return 0, Result{}
	}
	return id, a.apply(e, req)
}

// headerID reads InternalRaftRequest.header.ID (field 100, then field 1)
// from an encoded request without decoding the rest.
func headerID(b []byte) (uint64, bool) {
	h, ok := findField(b, 100, protowire.BytesType)
	if !ok {
		return 0, false
	}
	if h, ok = findField(h, 1, protowire.VarintType); !ok {
		return 0, false
	}
	v, n := protowire.ConsumeVarint(h)
	return v, n >= 0
}

// findField returns the encoding of the first field num of type typ in the
// message b: the bytes of a length-delimited field's value, or the rest of
// b starting at any other field's value.
func findField(b []byte, num protowire.Number, typ protowire.Type) ([]byte, bool) {
	for len(b) > 0 {
		fnum, ftyp, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		if fnum == num && ftyp == typ {
			if typ != protowire.BytesType {
				return b, true
			}
			v, m := protowire.ConsumeBytes(b)
			return v, m >= 0
		}
		m := protowire.ConsumeFieldValue(fnum, ftyp, b)
		if m < 0 {
			return nil, false
		}
		b = b[m:]
	}
	return nil, false
}

// replayNormal re-applies the in-memory effects of an entry the backend
// already holds: the member set, which is restored from the raft snapshot
// and must be rolled forward through the log like raft's own configuration.
func (a *Applier) replayNormal(req *pb.InternalRaftRequest) {
	switch {
	case req.ClusterMemberAttrSet != nil:
		a.setAttributes(req.ClusterMemberAttrSet, nil)
	case req.ClusterVersionSet != nil:
		a.cl.SetVersion(req.ClusterVersionSet.Ver, nil)
	}
}

func (a *Applier) apply(e raftpb.Entry, req *pb.InternalRaftRequest) Result {
	if a.alarms.corrupt() && refusedWhenCorrupt(req) {
		a.recordIndex(e)
		return Result{Err: ErrCorrupt}
	}
	if a.alarms.noSpace() && growsStore(req) {
		a.recordIndex(e)
		return Result{Err: ErrNoSpace}
	}
	// A local proposal skipped decode's check; cairn never proposes a
	// kind it cannot apply, but a request must not be half-understood.
	if _, ok := requestKind(req); !ok || a.lessor == nil && isLease(req) {
		return Result{Err: &UnsupportedError{Index: e.Index, Kind: fieldKind(req)}}
	}
	ci := txn.ConsistentIndex{Index: e.Index, Term: e.Term}
	a.consistentIndex = e.Index
	switch {
	case req.Put != nil:
		resp, err := a.exec.Put(req.Put, ci)
		return Result{Resp: resp, Err: err}
	case req.DeleteRange != nil:
		resp, err := a.exec.DeleteRange(req.DeleteRange, ci)
		return Result{Resp: resp, Err: err}
	case req.Txn != nil:
		if r := v2store.FromCarrier(req.Txn); r != nil && a.v2 != nil {
			return a.applyV2(e, r)
		}
		resp, err := a.exec.Txn(req.Txn, ci)
		return Result{Resp: resp, Err: err}
	case req.Range != nil:
		// etcd 3.6 never proposes ranges, but an old log may hold one.
		a.kv.SetConsistentIndex(e.Index, e.Term)
		resp, err := a.exec.Range(req.Range)
		return Result{Resp: resp, Err: err}
	case req.Compaction != nil:
		// Replaying a compaction is harmless: it fails as already done.
		resp, physical, err := a.exec.Compact(req.Compaction, ci)
		return Result{Resp: resp, Err: err, Physical: physical}
	case req.ClusterMemberAttrSet != nil:
		w := a.kv.Write()
		defer a.end(w, e)
		return Result{Err: a.setAttributes(req.ClusterMemberAttrSet, persister{w.BackendTx()})}
	case req.ClusterVersionSet != nil:
		w := a.kv.Write()
		defer a.end(w, e)
		return Result{Err: a.cl.SetVersion(req.ClusterVersionSet.Ver, persister{w.BackendTx()})}
	case req.Alarm != nil:
		w := a.kv.Write()
		defer a.end(w, e)
		resp, err := a.alarms.apply(req.Alarm, w.BackendTx())
		return Result{Resp: resp, Err: err}
	case req.LeaseGrant != nil:
		return a.leaseGrant(e, req.LeaseGrant)
	case req.LeaseRevoke != nil:
		return a.leaseRevoke(e, req.LeaseRevoke)
	case req.LeaseCheckpoint != nil:
		return a.leaseCheckpoint(e, req.LeaseCheckpoint)
	}
	// Invariant: requestKind accepts exactly the kinds handled above.
	panic(fmt.Sprintf("apply: request kind accepted but not handled: %s", fieldKind(req)))
}

// end records the consistent index in the entry's transaction and ends it.
func (a *Applier) end(w *mvcc.WriteTxn, e raftpb.Entry) {
	w.SetConsistentIndex(e.Index, e.Term)
	if err := w.End(); err != nil {
		a.lg.Error("backend commit failed", zap.Error(err))
	}
	a.consistentIndex = e.Index
}

// recordIndex records the consistent index of an entry without effects.
func (a *Applier) recordIndex(e raftpb.Entry) {
	a.kv.SetConsistentIndex(e.Index, e.Term)
	a.consistentIndex = e.Index
}

func (a *Applier) setAttributes(r *membershippb.ClusterMemberAttrSetRequest, p membership.Persister) error {
	attr := membership.Attributes{}
	if r.MemberAttributes != nil {
		attr.Name = r.MemberAttributes.Name
		attr.ClientURLs = r.MemberAttributes.ClientUrls
	}
	known, err := a.cl.SetAttributes(r.Member_ID, attr, p)
	if !known {
		// etcd treats this as a broken invariant and panics; cairn logs
		// loudly and goes on, since refusing would stop the whole log.
		a.lg.Error("failed to update; member unknown", zap.String("member-id", membership.FormatID(r.Member_ID)))
	}
	return err
}

// refusedWhenCorrupt reports whether etcd refuses the request while a
// CORRUPT alarm is active: every request that reads or changes the key
// space through the log, and lease grants and revokes.
func refusedWhenCorrupt(r *pb.InternalRaftRequest) bool {
	return r.Put != nil || r.DeleteRange != nil || r.Txn != nil || r.Range != nil || r.Compaction != nil ||
		r.LeaseGrant != nil || r.LeaseRevoke != nil
}

// growsStore reports whether a request may add data while NOSPACE is
// active (etcd refuses puts, txns with puts and lease grants).
func growsStore(r *pb.InternalRaftRequest) bool {
	switch {
	case r.Put != nil, r.LeaseGrant != nil:
		return true
	case r.Txn != nil:
		return txnHasPut(r.Txn)
	}
	return false
}

func txnHasPut(t *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			if op.GetRequestPut() != nil {
				return true
			}
			if n := op.GetRequestTxn(); n != nil && txnHasPut(n) {
				return true
			}
		}
	}
	return false
}
