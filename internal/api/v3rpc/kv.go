package v3rpc

import (
	"bytes"
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

type kvServer struct {
	pb.UnimplementedKVServer
	hdr       header
	m         Member
	maxTxnOps int
}

func (s *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkRange(r); err != nil {
		return nil, err
	}
	resp, err := s.m.Range(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(&resp.Header)
	return resp, nil
}

func (s *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := checkPut(r); err != nil {
		return nil, err
	}
	resp, err := s.m.Put(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(&resp.Header)
	return resp, nil
}

func (s *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := checkDelete(r); err != nil {
		return nil, err
	}
	resp, err := s.m.DeleteRange(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(&resp.Header)
	return resp, nil
}

func (s *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := checkTxn(r, s.maxTxnOps); err != nil {
		return nil, err
	}
	// Overlap checks come after the size checks, so their cost is bounded.
	if _, _, err := checkOverlaps(r.Success); err != nil {
		return nil, err
	}
	if _, _, err := checkOverlaps(r.Failure); err != nil {
		return nil, err
	}
	resp, err := s.m.Txn(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(&resp.Header)
	return resp, nil
}

func (s *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := s.m.Compact(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(&resp.Header)
	return resp, nil
}

func checkRange(r *pb.RangeRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.SortOrder)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.SortTarget)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	return nil
}

func checkPut(r *pb.PutRequest) error {
	switch {
	case len(r.Key) == 0:
		return rpctypes.ErrGRPCEmptyKey
	case r.IgnoreValue && len(r.Value) != 0:
		return rpctypes.ErrGRPCValueProvided
	case r.IgnoreLease && r.Lease != 0:
		return rpctypes.ErrGRPCLeaseProvided
	}
	return nil
}

func checkDelete(r *pb.DeleteRangeRequest) error {
	if len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	return nil
}

// checkTxn bounds the number of operations per branch (and the compares) by
// --max-txn-ops, recursively, and rejects empty keys and empty operations.
func checkTxn(r *pb.TxnRequest, maxOps int) error {
	n := max(len(r.Compare), len(r.Success), len(r.Failure))
	if n > maxOps {
		return rpctypes.ErrGRPCTooManyOps
	}
	for _, c := range r.Compare {
		if len(c.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if err := checkOp(op, maxOps-n); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkOp(op *pb.RequestOp, maxOps int) error {
	switch v := op.GetRequest().(type) {
	case *pb.RequestOp_RequestRange:
		return checkRange(v.RequestRange)
	case *pb.RequestOp_RequestPut:
		return checkPut(v.RequestPut)
	case *pb.RequestOp_RequestDeleteRange:
		return checkDelete(v.RequestDeleteRange)
	case *pb.RequestOp_RequestTxn:
		return checkTxn(v.RequestTxn, maxOps)
	}
	// An empty operation: etcd answers "key not found".
	return rpctypes.ErrGRPCKeyNotFound
}

// span is a key interval [from, to); to == nil means the single key from.
// As in etcd's checkIntervals (an adt interval tree of plain strings), a
// range end of "\x00" is not "every key from": it compares as the byte
// string it is, so a from-key delete never conflicts with a put here (the
// txn layer refuses the one such txn etcd would panic on).
type span struct{ from, to []byte }

func (s span) contains(k []byte) bool {
	if s.to == nil {
		return bytes.Equal(s.from, k)
	}
	return bytes.Compare(s.from, k) <= 0 && bytes.Compare(k, s.to) < 0
}

type spans []span

func (ss spans) contains(k []byte) bool {
	for _, s := range ss {
		if s.contains(k) {
			return true
		}
	}
	return false
}

// checkOverlaps rejects a branch that writes one key twice, or puts a key
// that the same branch deletes, including inside nested txns (where the
// then and else branches of one nested txn may put the same key, since only
// one of them runs). It returns the branch's puts and deletes for the
// caller's level.
func checkOverlaps(ops []*pb.RequestOp) (map[string]struct{}, spans, error) {
	var dels spans
	for _, op := range ops {
		if d := op.GetRequestDeleteRange(); d != nil {
			s := span{from: d.Key}
			if len(d.RangeEnd) != 0 {
				s.to = d.RangeEnd
			}
			dels = append(dels, s)
		}
	}
	puts := map[string]struct{}{}
	for _, op := range ops {
		t := op.GetRequestTxn()
		if t == nil {
			continue
		}
		putsThen, delsThen, err := checkOverlaps(t.Success)
		if err != nil {
			return nil, nil, err
		}
		putsElse, delsElse, err := checkOverlaps(t.Failure)
		if err != nil {
			return nil, nil, err
		}
		for k := range putsThen {
			if _, dup := puts[k]; dup || dels.contains([]byte(k)) {
				return nil, nil, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			if _, dup := puts[k]; dup {
				if _, sameTxn := putsThen[k]; !sameTxn {
					return nil, nil, rpctypes.ErrGRPCDuplicateKey
				}
			}
			if dels.contains([]byte(k)) {
				return nil, nil, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		dels = append(dels, delsThen...)
		dels = append(dels, delsElse...)
	}
	for _, op := range ops {
		p := op.GetRequestPut()
		if p == nil {
			continue
		}
		k := string(p.Key)
		if _, dup := puts[k]; dup || dels.contains(p.Key) {
			return nil, nil, rpctypes.ErrGRPCDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}
