// Package txn executes etcd's v3 KV requests (etcdserverpb Range, Put,
// DeleteRange, Txn, Compaction) against an mvcc.Store, deterministically and
// with etcd 3.6's semantics and checks.
//
// Threading: Range and read-only Txn may run on any goroutine. Put,
// DeleteRange, write Txn and Compact run on the store's writer goroutine
// (cairn's apply loop), one at a time. Requests are not modified; response
// messages are fresh and owned by the caller.
//
// Validation etcd performs at the API edge (empty key, too many operations,
// request size, lease/value given together with ignore_lease/ignore_value)
// is the caller's. Errors are this package's and mvcc's sentinels wrapped
// with %w; the API layer maps them to rpctypes errors.
package txn

import (
	"bytes"
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairnkv/cairn/internal/failpoint"
	"github.com/cairnkv/cairn/internal/mvcc"
)

// Sentinel errors (mvcc.ErrCompacted and mvcc.ErrFutureRev come through
// wrapped as well).
var (
	// ErrLeaseNotFound: a Put names a lease the lessor does not know
	// (etcd: "etcdserver: requested lease not found").
	ErrLeaseNotFound = errors.New("txn: requested lease not found")
	// ErrKeyNotFound: ignore_value or ignore_lease on a missing key
	// (etcd: "etcdserver: key not found").
	ErrKeyNotFound = errors.New("txn: key not found")
	// ErrDuplicateKey: a Txn puts a key twice, or puts a key it deletes, on
	// one path (etcd: "etcdserver: duplicate key given in txn request").
	ErrDuplicateKey = errors.New("txn: duplicate key given in txn request")
)

// Lessor is what requests need from the lease subsystem. Lookup reports
// whether lease id exists; it is called on the goroutine executing the
// request. Attach and Detach are the mvcc.Lessor half: pass the same value
// as mvcc.Config.Lessor, which is the one that calls them.
type Lessor interface {
	Lookup(id int64) bool
	mvcc.Lessor
}

// ConsistentIndex is the raft entry a write request applies; when Index is
// non-zero it is recorded in the same backend transaction as the request's
// changes (see mvcc.WriteTxn.SetConsistentIndex), even when the request
// fails with one of this package's errors.
type ConsistentIndex struct {
	Index, Term uint64
}

// Executor runs requests against one store.
type Executor struct {
	kv     *mvcc.Store
	lessor Lessor
}

// New returns an Executor. lessor may be nil: then any lease other than 0
// fails with ErrLeaseNotFound.
func New(kv *mvcc.Store, lessor Lessor) *Executor {
	return &Executor{kv: kv, lessor: lessor}
}

func (e *Executor) leaseExists(id int64) bool {
	return e.lessor != nil && e.lessor.Lookup(id)
}

// ranger is the Range shared by mvcc read and write transactions.
type ranger interface {
	Range(key, end []byte, ro mvcc.RangeOptions) (mvcc.RangeResult, error)
}

var (
	_ ranger = (*mvcc.ReadTxn)(nil)
	_ ranger = (*mvcc.WriteTxn)(nil)
)

// Range serves a RangeRequest from a read view. Any goroutine.
func (e *Executor) Range(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	rt := e.kv.Read()
	defer rt.End()
	return executeRange(rt, r)
}

// Put applies a PutRequest. Writer goroutine.
func (e *Executor) Put(r *pb.PutRequest, ci ConsistentIndex) (*pb.PutResponse, error) {
	if r.Lease != 0 && !e.leaseExists(r.Lease) {
		e.setCI(ci)
		return nil, fmt.Errorf("put %q lease %x: %w", r.Key, r.Lease, ErrLeaseNotFound)
	}
	if failpoint.On(failpoint.PutAckUnwritten) && bytes.HasSuffix(r.Value, []byte("0")) {
		// Test-only hook: acknowledge the put without writing it.
		e.setCI(ci)
		return &pb.PutResponse{Header: &pb.ResponseHeader{Revision: e.kv.Rev()}}, nil
	}
	w := e.kv.Write()
	setCI(w, ci)
	resp, err := put(w, r)
	if eerr := w.End(); err == nil && eerr != nil {
		return nil, eerr
	}
	return resp, err
}

// DeleteRange applies a DeleteRangeRequest. Writer goroutine.
func (e *Executor) DeleteRange(r *pb.DeleteRangeRequest, ci ConsistentIndex) (*pb.DeleteRangeResponse, error) {
	w := e.kv.Write()
	setCI(w, ci)
	resp, err := deleteRange(w, r)
	if eerr := w.End(); err == nil && eerr != nil {
		return nil, eerr
	}
	return resp, err
}

// Compact applies a CompactionRequest: it returns at once, and the channel
// closes when the physical deletion is done (what `--physical` waits for;
// on ErrCompacted it closes when earlier compactions are done). Writer
// goroutine.
func (e *Executor) Compact(r *pb.CompactionRequest, ci ConsistentIndex) (*pb.CompactionResponse, <-chan struct{}, error) {
	ch, err := e.kv.CompactWithIndex(r.Revision, ci.Index, ci.Term)
	if err != nil {
		return nil, ch, err
	}
	return &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: e.kv.Rev()}}, ch, nil
}

func (e *Executor) setCI(ci ConsistentIndex) {
	if ci.Index != 0 {
		e.kv.SetConsistentIndex(ci.Index, ci.Term)
	}
}

func setCI(w *mvcc.WriteTxn, ci ConsistentIndex) {
	if ci.Index != 0 {
		w.SetConsistentIndex(ci.Index, ci.Term)
	}
}

// putResponse is a PutResponse with its header in one allocation.
type putResponse struct {
	resp pb.PutResponse
	hdr  pb.ResponseHeader
}

func put(w *mvcc.WriteTxn, r *pb.PutRequest) (*pb.PutResponse, error) {
	pr := &putResponse{}
	pr.resp.Header = &pr.hdr
	resp := &pr.resp
	val, lease := r.Value, r.Lease
	if r.IgnoreValue || r.IgnoreLease || r.PrevKv {
		rr, err := w.Range(r.Key, nil, mvcc.RangeOptions{})
		if err != nil {
			return nil, fmt.Errorf("put %q: %w", r.Key, err)
		}
		if (r.IgnoreValue || r.IgnoreLease) && len(rr.KVs) == 0 {
			return nil, fmt.Errorf("put %q: %w", r.Key, ErrKeyNotFound)
		}
		if r.IgnoreValue {
			val = rr.KVs[0].Value
		}
		if r.IgnoreLease {
			lease = rr.KVs[0].Lease
		}
		if r.PrevKv && len(rr.KVs) > 0 {
			resp.PrevKv = &rr.KVs[0]
		}
	}
	rev, err := w.Put(r.Key, val, lease)
	if err != nil {
		return nil, err
	}
	resp.Header.Revision = rev
	return resp, nil
}

func deleteRange(w *mvcc.WriteTxn, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}}
	if r.PrevKv {
		rr, err := w.Range(r.Key, r.RangeEnd, mvcc.RangeOptions{})
		if err != nil {
			return nil, fmt.Errorf("delete %q: %w", r.Key, err)
		}
		resp.PrevKvs = make([]*mvccpb.KeyValue, len(rr.KVs))
		for i := range rr.KVs {
			resp.PrevKvs[i] = &rr.KVs[i]
		}
	}
	n, rev, err := w.DeleteRange(r.Key, r.RangeEnd)
	if err != nil {
		return nil, err
	}
	resp.Deleted, resp.Header.Revision = n, rev
	return resp, nil
}
