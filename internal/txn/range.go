package txn

import (
	"bytes"
	"fmt"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairnkv/cairn/internal/mvcc"
)

// executeRange runs r with etcd's rules: the limit is applied by the index
// only when no sort or revision filter needs every key; one extra key is
// fetched to compute More; filters, then sorting (KEY/ASCEND is the index
// order, any other target defaults to ASCEND), then the limit.
func executeRange(rv ranger, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	limit := r.Limit
	if r.SortOrder != pb.RangeRequest_NONE ||
		r.MinModRevision != 0 || r.MaxModRevision != 0 ||
		r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		limit = 0
	}
	if limit > 0 {
		limit++
	}
	rr, err := rv.Range(r.Key, r.RangeEnd, mvcc.RangeOptions{Limit: limit, Rev: r.Revision, Count: r.CountOnly})
	if err != nil {
		return nil, fmt.Errorf("range %q: %w", r.Key, err)
	}
	kvs := rr.KVs
	if r.MaxModRevision != 0 {
		kvs = prune(kvs, func(kv *mvccpb.KeyValue) bool { return kv.ModRevision > r.MaxModRevision })
	}
	if r.MinModRevision != 0 {
		kvs = prune(kvs, func(kv *mvccpb.KeyValue) bool { return kv.ModRevision < r.MinModRevision })
	}
	if r.MaxCreateRevision != 0 {
		kvs = prune(kvs, func(kv *mvccpb.KeyValue) bool { return kv.CreateRevision > r.MaxCreateRevision })
	}
	if r.MinCreateRevision != 0 {
		kvs = prune(kvs, func(kv *mvccpb.KeyValue) bool { return kv.CreateRevision < r.MinCreateRevision })
	}

	order := r.SortOrder
	if r.SortTarget != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	} else if r.SortTarget == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND {
		order = pb.RangeRequest_NONE // already in key order
	}
	if order != pb.RangeRequest_NONE {
		// sort.Sort (not a stable sort): equal elements end in the same
		// order as etcd's, which uses the same algorithm on the same input.
		var s sort.Interface
		switch r.SortTarget {
		case pb.RangeRequest_KEY:
			s = byKey{kvs}
		case pb.RangeRequest_VERSION:
			s = byVersion{kvs}
		case pb.RangeRequest_CREATE:
			s = byCreate{kvs}
		case pb.RangeRequest_MOD:
			s = byMod{kvs}
		case pb.RangeRequest_VALUE:
			s = byValue{kvs}
		default:
			return nil, fmt.Errorf("range: unknown sort target %d", r.SortTarget)
		}
		switch order {
		case pb.RangeRequest_ASCEND:
			sort.Sort(s)
		case pb.RangeRequest_DESCEND:
			sort.Sort(sort.Reverse(s))
		}
	}

	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: rr.Rev}, Count: int64(rr.Count)}
	if r.Limit > 0 && len(kvs) > int(r.Limit) {
		kvs = kvs[:r.Limit]
		resp.More = true
	}
	resp.Kvs = make([]*mvccpb.KeyValue, len(kvs))
	for i := range kvs {
		if r.KeysOnly {
			kvs[i].Value = nil
		}
		resp.Kvs[i] = &kvs[i]
	}
	return resp, nil
}

// prune removes, in place and keeping order, the kvs drop selects.
func prune(kvs []mvccpb.KeyValue, drop func(*mvccpb.KeyValue) bool) []mvccpb.KeyValue {
	j := 0
	for i := range kvs {
		if !drop(&kvs[i]) {
			kvs[j] = kvs[i]
			j++
		}
	}
	return kvs[:j]
}

type kvs []mvccpb.KeyValue

func (s kvs) Len() int      { return len(s) }
func (s kvs) Swap(i, j int) { s[i], s[j] = s[j], s[i] }

type (
	byKey     struct{ kvs }
	byVersion struct{ kvs }
	byCreate  struct{ kvs }
	byMod     struct{ kvs }
	byValue   struct{ kvs }
)

func (s byKey) Less(i, j int) bool     { return bytes.Compare(s.kvs[i].Key, s.kvs[j].Key) < 0 }
func (s byVersion) Less(i, j int) bool { return s.kvs[i].Version < s.kvs[j].Version }
func (s byCreate) Less(i, j int) bool  { return s.kvs[i].CreateRevision < s.kvs[j].CreateRevision }
func (s byMod) Less(i, j int) bool     { return s.kvs[i].ModRevision < s.kvs[j].ModRevision }
func (s byValue) Less(i, j int) bool   { return bytes.Compare(s.kvs[i].Value, s.kvs[j].Value) < 0 }
