package txn

import (
	"bytes"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairnkv/cairn/internal/mvcc"
)

// IsReadOnly reports whether every operation of r, on both branches, is a
// Range (nested transactions make it a write, as in etcd).
func IsReadOnly(r *pb.TxnRequest) bool {
	for _, u := range r.Success {
		if u.GetRequestRange() == nil {
			return false
		}
	}
	for _, u := range r.Failure {
		if u.GetRequestRange() == nil {
			return false
		}
	}
	return true
}

// Txn applies a TxnRequest: compares (all nested ones too) are evaluated on
// one read view, the chosen operations are checked, then executed in one
// write transaction at one revision (or on the read view when the request
// is read-only). Writer goroutine for write transactions; any goroutine
// when IsReadOnly(r) (ci is then ignored).
func (e *Executor) Txn(r *pb.TxnRequest, ci ConsistentIndex) (*pb.TxnResponse, error) {
	if err := CheckDuplicates(r); err != nil {
		e.setCI(ci)
		return nil, err
	}
	readOnly := IsReadOnly(r)
	rt := e.kv.Read()
	path := comparePath(rt, r, nil)
	var fromKeys []string
	if _, err := e.check(rt, r, path, &fromKeys); err != nil {
		rt.End()
		if !readOnly {
			e.setCI(ci)
		}
		return nil, err
	}
	resp, _ := newTxnResp(r, path)
	if readOnly {
		defer rt.End()
		if _, err := execute(rt, nil, r, path, resp); err != nil {
			return nil, err
		}
		resp.Header.Revision = rt.Rev()
		return resp, nil
	}
	rt.End()
	w := e.kv.Write()
	setCI(w, ci)
	_, err := execute(w, w, r, path, resp)
	rev := w.Rev()
	if w.Changes() > 0 {
		rev++
	}
	if eerr := w.End(); err == nil {
		err = eerr
	}
	if err != nil {
		return nil, err
	}
	resp.Header.Revision = rev
	return resp, nil
}

// comparePath appends to path whether each transaction, depth first in
// execution order, takes its success branch.
func comparePath(rv ranger, r *pb.TxnRequest, path []bool) []bool {
	ok := true
	for _, c := range r.Compare {
		if !applyCompare(rv, c) {
			ok = false
			break
		}
	}
	path = append(path, ok)
	ops := r.Success
	if !ok {
		ops = r.Failure
	}
	for _, op := range ops {
		if t, isTxn := op.Request.(*pb.RequestOp_RequestTxn); isTxn && t.RequestTxn != nil {
			path = comparePath(rv, t.RequestTxn, path)
		}
	}
	return path
}

// applyCompare is etcd's: every key in the compare's range must satisfy it;
// an empty range compares against a zero KeyValue, except VALUE which fails.
//
// Compares of the create or mod revision or the version read the key index
// only (the backend holds nothing they need).
func applyCompare(rv ranger, c *pb.Compare) bool {
	metaOnly := c.Target == pb.Compare_CREATE || c.Target == pb.Compare_MOD || c.Target == pb.Compare_VERSION
	rr, err := rv.Range(c.Key, c.RangeEnd, mvcc.RangeOptions{MetaOnly: metaOnly})
	if err != nil {
		return false
	}
	if len(rr.KVs) == 0 {
		if c.Target == pb.Compare_VALUE {
			return false
		}
		return compareKV(c, &mvccpb.KeyValue{})
	}
	for i := range rr.KVs {
		if !compareKV(c, &rr.KVs[i]) {
			return false
		}
	}
	return true
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var res int
	switch c.Target {
	case pb.Compare_VALUE:
		var v []byte
		if t, _ := c.TargetUnion.(*pb.Compare_Value); t != nil {
			v = t.Value
		}
		res = bytes.Compare(kv.Value, v)
	case pb.Compare_CREATE:
		res = cmp64(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		res = cmp64(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		res = cmp64(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		res = cmp64(kv.Lease, c.GetLease())
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return res == 0
	case pb.Compare_NOT_EQUAL:
		return res != 0
	case pb.Compare_GREATER:
		return res > 0
	case pb.Compare_LESS:
		return res < 0
	}
	return true
}

// check runs etcd's pre-execution checks on the chosen branches: Range
// revisions, and Put's key existence (ignore_value/ignore_lease) and lease.
// It returns how many nested transactions it consumed from path.
//
// One check goes beyond etcd: a put with ignore_value/ignore_lease whose key
// an earlier from-key delete (range_end "\x00", which etcd's duplicate check
// does not see) of the same transaction removes would fail half-way through
// execution; etcd 3.6 panics there. cairn rejects it here with
// ErrKeyNotFound, before anything is written. fromKeys collects the start
// keys of from-key deletes in execution order.
func (e *Executor) check(rv *mvcc.ReadTxn, r *pb.TxnRequest, path []bool, fromKeys *[]string) (int, error) {
	ops := r.Success
	if !path[0] {
		ops = r.Failure
	}
	used := 0
	for _, op := range ops {
		switch t := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			if rev := t.RequestRange.Revision; rev != 0 {
				if rev > rv.Rev() {
					return 0, fmt.Errorf("txn range at %d: %w", rev, mvcc.ErrFutureRev)
				}
				if rev < rv.FirstRev() {
					return 0, fmt.Errorf("txn range at %d: %w", rev, mvcc.ErrCompacted)
				}
			}
		case *pb.RequestOp_RequestPut:
			p := t.RequestPut
			if p.IgnoreValue || p.IgnoreLease {
				rr, err := rv.Range(p.Key, nil, mvcc.RangeOptions{})
				if err != nil {
					return 0, err
				}
				if len(rr.KVs) == 0 {
					return 0, fmt.Errorf("txn put %q: %w", p.Key, ErrKeyNotFound)
				}
				for _, from := range *fromKeys {
					if from <= string(p.Key) {
						return 0, fmt.Errorf("txn put %q after delete from %q: %w", p.Key, from, ErrKeyNotFound)
					}
				}
			}
			if p.Lease != 0 && !e.leaseExists(p.Lease) {
				return 0, fmt.Errorf("txn put %q lease %x: %w", p.Key, p.Lease, ErrLeaseNotFound)
			}
		case *pb.RequestOp_RequestDeleteRange:
			if d := t.RequestDeleteRange; len(d.RangeEnd) == 1 && d.RangeEnd[0] == 0 {
				*fromKeys = append(*fromKeys, string(d.Key))
			}
		case *pb.RequestOp_RequestTxn:
			n, err := e.check(rv, t.RequestTxn, path[1+used:], fromKeys)
			if err != nil {
				return 0, err
			}
			used += n + 1
		}
	}
	return used, nil
}

// newTxnResp builds the response skeleton for the chosen branches.
func newTxnResp(r *pb.TxnRequest, path []bool) (*pb.TxnResponse, int) {
	ops := r.Success
	if !path[0] {
		ops = r.Failure
	}
	resp := &pb.TxnResponse{Succeeded: path[0], Header: &pb.ResponseHeader{}, Responses: make([]*pb.ResponseOp, len(ops))}
	used := 0
	for i, op := range ops {
		switch t := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{}}
		case *pb.RequestOp_RequestPut:
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{}}
		case *pb.RequestOp_RequestDeleteRange:
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{}}
		case *pb.RequestOp_RequestTxn:
			sub, n := newTxnResp(t.RequestTxn, path[1+used:])
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: sub}}
			used += n + 1
		}
	}
	return resp, used
}

// execute runs the chosen branch of r. w is nil for read-only transactions.
func execute(rv ranger, w *mvcc.WriteTxn, r *pb.TxnRequest, path []bool, resp *pb.TxnResponse) (int, error) {
	ops := r.Success
	if !path[0] {
		ops = r.Failure
	}
	used := 0
	for i, op := range ops {
		out := resp.Responses[i].Response
		switch t := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			rr, err := executeRange(rv, t.RequestRange)
			if err != nil {
				return 0, fmt.Errorf("txn: %w", err)
			}
			out.(*pb.ResponseOp_ResponseRange).ResponseRange = rr
		case *pb.RequestOp_RequestPut:
			pr, err := put(w, t.RequestPut)
			if err != nil {
				return 0, fmt.Errorf("txn: %w", err)
			}
			out.(*pb.ResponseOp_ResponsePut).ResponsePut = pr
		case *pb.RequestOp_RequestDeleteRange:
			dr, err := deleteRange(w, t.RequestDeleteRange)
			if err != nil {
				return 0, fmt.Errorf("txn: %w", err)
			}
			out.(*pb.ResponseOp_ResponseDeleteRange).ResponseDeleteRange = dr
		case *pb.RequestOp_RequestTxn:
			sub := out.(*pb.ResponseOp_ResponseTxn).ResponseTxn
			n, err := execute(rv, w, t.RequestTxn, path[1+used:], sub)
			if err != nil {
				return 0, err
			}
			used += n + 1
		}
	}
	return used, nil
}
