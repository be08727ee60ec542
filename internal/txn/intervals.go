package txn

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// CheckDuplicates is etcd's conflict check on a Txn (v3rpc checkIntervals),
// applied to both branches: a key may not be put twice, nor put and deleted,
// where both could execute. A nested transaction's success and failure
// branches may put the same key (only one runs). It returns ErrDuplicateKey.
// Any goroutine; the API edge may call it before proposing (etcd does).
func CheckDuplicates(r *pb.TxnRequest) error {
	if _, _, err := checkIntervals(r.Success); err != nil {
		return err
	}
	_, _, err := checkIntervals(r.Failure)
	return err
}

// span is a deleted key range [begin, end); a single key k is [k, k+"\x00").
type span struct{ begin, end string }

func (s span) has(k string) bool { return s.begin <= k && k < s.end }

type spans []span

func (ss spans) has(k string) bool {
	for _, s := range ss {
		if s.has(k) {
			return true
		}
	}
	return false
}

func checkIntervals(ops []*pb.RequestOp) (map[string]struct{}, spans, error) {
	var dels spans
	for _, op := range ops {
		d := op.GetRequestDeleteRange()
		if d == nil {
			continue
		}
		if len(d.RangeEnd) != 0 {
			dels = append(dels, span{string(d.Key), string(d.RangeEnd)})
		} else {
			dels = append(dels, span{string(d.Key), string(d.Key) + "\x00"})
		}
	}
	puts := map[string]struct{}{}
	for _, op := range ops {
		t := op.GetRequestTxn()
		if t == nil {
			continue
		}
		putsThen, delsThen, err := checkIntervals(t.Success)
		if err != nil {
			return nil, nil, err
		}
		putsElse, delsElse, err := checkIntervals(t.Failure)
		if err != nil {
			return nil, nil, err
		}
		for k := range putsThen {
			if _, dup := puts[k]; dup || dels.has(k) {
				return nil, nil, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			if _, dup := puts[k]; dup {
				// Allowed when the same nested txn's other branch put it.
				if _, sameTxn := putsThen[k]; !sameTxn {
					return nil, nil, ErrDuplicateKey
				}
			}
			if dels.has(k) {
				return nil, nil, ErrDuplicateKey
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
		if _, dup := puts[k]; dup || dels.has(k) {
			return nil, nil, ErrDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}
