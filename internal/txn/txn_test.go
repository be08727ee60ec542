package txn

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/mvcc"
)

type fakeLessor map[int64]bool

func (f fakeLessor) Lookup(id int64) bool { return f[id] }
func (f fakeLessor) Attach(int64, []byte) {}
func (f fakeLessor) Detach(int64, []byte) {}

func newExec(t testing.TB, l Lessor) (*Executor, *mvcc.Store) {
	t.Helper()
	bc := backend.DefaultConfig(filepath.Join(t.TempDir(), "db"))
	bc.MmapSize = 0
	b, err := backend.Open(bc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mvcc.DefaultConfig()
	if l != nil {
		cfg.Lessor = l
	}
	s, err := mvcc.New(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); b.Close() })
	return New(s, l), s
}

// seed: a@2 (v1), b@3, c@4, a@5 (v2, lease 7), d@6 deleted@7, e@8
func seed(t *testing.T, e *Executor) {
	t.Helper()
	for _, p := range []*pb.PutRequest{
		{Key: []byte("a"), Value: []byte("3")},
		{Key: []byte("b"), Value: []byte("2")},
		{Key: []byte("c"), Value: []byte("1")},
		{Key: []byte("a"), Value: []byte("4"), Lease: 7},
		{Key: []byte("d"), Value: []byte("0")},
	} {
		if _, err := e.Put(p, ConsistentIndex{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("d")}, ConsistentIndex{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Put(&pb.PutRequest{Key: []byte("e"), Value: []byte("2")}, ConsistentIndex{}); err != nil {
		t.Fatal(err)
	}
}

func keys(r *pb.RangeResponse) string {
	var s []string
	for _, kv := range r.Kvs {
		s = append(s, string(kv.Key)+"="+string(kv.Value))
	}
	return fmt.Sprintf("%s count=%d more=%v rev=%d", strings.Join(s, ","), r.Count, r.More, r.Header.Revision)
}

func TestRangeOptions(t *testing.T) {
	e, _ := newExec(t, fakeLessor{7: true})
	seed(t, e)
	all := func(r pb.RangeRequest) *pb.RangeRequest { r.Key, r.RangeEnd = []byte("a"), []byte{0}; return &r }
	tests := []struct {
		name string
		req  *pb.RangeRequest
		want string
		err  error
	}{
		{"single", &pb.RangeRequest{Key: []byte("a")}, "a=4 count=1 more=false rev=8", nil},
		{"missing", &pb.RangeRequest{Key: []byte("d")}, " count=0 more=false rev=8", nil},
		{"range", &pb.RangeRequest{Key: []byte("b"), RangeEnd: []byte("e")}, "b=2,c=1 count=2 more=false rev=8", nil},
		{"from key", all(pb.RangeRequest{}), "a=4,b=2,c=1,e=2 count=4 more=false rev=8", nil},
		{"limit", all(pb.RangeRequest{Limit: 2}), "a=4,b=2 count=4 more=true rev=8", nil},
		{"limit exact", all(pb.RangeRequest{Limit: 4}), "a=4,b=2,c=1,e=2 count=4 more=false rev=8", nil},
		{"rev", all(pb.RangeRequest{Revision: 6}), "a=4,b=2,c=1,d=0 count=4 more=false rev=8", nil},
		{"rev 3", all(pb.RangeRequest{Revision: 3}), "a=3,b=2 count=2 more=false rev=8", nil},
		{"future", all(pb.RangeRequest{Revision: 9}), "", mvcc.ErrFutureRev},
		{"keys only", &pb.RangeRequest{Key: []byte("a"), KeysOnly: true}, "a= count=1 more=false rev=8", nil},
		{"count only", all(pb.RangeRequest{CountOnly: true}), " count=4 more=false rev=8", nil},
		{"count only limit", all(pb.RangeRequest{CountOnly: true, Limit: 1}), " count=4 more=false rev=8", nil},
		{"sort value asc", all(pb.RangeRequest{SortTarget: pb.RangeRequest_VALUE}), "c=1,b=2,e=2,a=4 count=4 more=false rev=8", nil},
		{"sort value desc limit", all(pb.RangeRequest{SortTarget: pb.RangeRequest_VALUE, SortOrder: pb.RangeRequest_DESCEND, Limit: 2}), "a=4,b=2 count=4 more=true rev=8", nil}, // ties: unstable sort, as etcd
		{"sort key desc", all(pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND}), "e=2,c=1,b=2,a=4 count=4 more=false rev=8", nil},
		{"sort create", all(pb.RangeRequest{SortTarget: pb.RangeRequest_CREATE, SortOrder: pb.RangeRequest_DESCEND}), "e=2,c=1,b=2,a=4 count=4 more=false rev=8", nil},
		{"sort mod", all(pb.RangeRequest{SortTarget: pb.RangeRequest_MOD}), "b=2,c=1,a=4,e=2 count=4 more=false rev=8", nil},
		{"sort version", all(pb.RangeRequest{SortTarget: pb.RangeRequest_VERSION, SortOrder: pb.RangeRequest_DESCEND, Limit: 1}), "a=4 count=4 more=true rev=8", nil},
		{"min mod", all(pb.RangeRequest{MinModRevision: 5}), "a=4,e=2 count=4 more=false rev=8", nil},
		{"max mod", all(pb.RangeRequest{MaxModRevision: 4}), "b=2,c=1 count=4 more=false rev=8", nil},
		{"min create", all(pb.RangeRequest{MinCreateRevision: 3}), "b=2,c=1,e=2 count=4 more=false rev=8", nil},
		{"max create limit", all(pb.RangeRequest{MaxCreateRevision: 3, Limit: 1}), "a=4 count=4 more=true rev=8", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.Range(tt.req)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(resp); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTxnCompares(t *testing.T) {
	e, _ := newExec(t, fakeLessor{7: true})
	seed(t, e)
	// a: create 2, mod 5, version 2, lease 7, value "4"; d missing.
	type C = pb.Compare
	cmp := func(key string, tg pb.Compare_CompareTarget, res pb.Compare_CompareResult, u any) *C {
		c := &C{Key: []byte(key), Target: tg, Result: res}
		switch v := u.(type) {
		case int64:
			switch tg {
			case pb.Compare_VERSION:
				c.TargetUnion = &pb.Compare_Version{Version: v}
			case pb.Compare_CREATE:
				c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: v}
			case pb.Compare_MOD:
				c.TargetUnion = &pb.Compare_ModRevision{ModRevision: v}
			case pb.Compare_LEASE:
				c.TargetUnion = &pb.Compare_Lease{Lease: v}
			}
		case string:
			c.TargetUnion = &pb.Compare_Value{Value: []byte(v)}
		}
		return c
	}
	E, G, L, N := pb.Compare_EQUAL, pb.Compare_GREATER, pb.Compare_LESS, pb.Compare_NOT_EQUAL
	tests := []struct {
		c    *C
		want bool
	}{
		{cmp("a", pb.Compare_VERSION, E, int64(2)), true},
		{cmp("a", pb.Compare_VERSION, G, int64(1)), true},
		{cmp("a", pb.Compare_VERSION, L, int64(2)), false},
		{cmp("a", pb.Compare_VERSION, N, int64(2)), false},
		{cmp("a", pb.Compare_CREATE, E, int64(2)), true},
		{cmp("a", pb.Compare_CREATE, G, int64(2)), false},
		{cmp("a", pb.Compare_CREATE, L, int64(3)), true},
		{cmp("a", pb.Compare_CREATE, N, int64(3)), true},
		{cmp("a", pb.Compare_MOD, E, int64(5)), true},
		{cmp("a", pb.Compare_MOD, G, int64(4)), true},
		{cmp("a", pb.Compare_MOD, L, int64(5)), false},
		{cmp("a", pb.Compare_MOD, N, int64(4)), true},
		{cmp("a", pb.Compare_VALUE, E, "4"), true},
		{cmp("a", pb.Compare_VALUE, G, "3"), true},
		{cmp("a", pb.Compare_VALUE, L, "4"), false},
		{cmp("a", pb.Compare_VALUE, N, "5"), true},
		{cmp("a", pb.Compare_LEASE, E, int64(7)), true},
		{cmp("a", pb.Compare_LEASE, G, int64(7)), false},
		{cmp("a", pb.Compare_LEASE, L, int64(8)), true},
		{cmp("a", pb.Compare_LEASE, N, int64(0)), true},
		// Missing key: a zero KeyValue, but VALUE always fails.
		{cmp("d", pb.Compare_VERSION, E, int64(0)), true},
		{cmp("d", pb.Compare_CREATE, E, int64(0)), true},
		{cmp("d", pb.Compare_MOD, L, int64(1)), true},
		{cmp("d", pb.Compare_LEASE, E, int64(0)), true},
		{cmp("d", pb.Compare_VALUE, E, ""), false},
		{cmp("d", pb.Compare_VALUE, N, "x"), false},
		// Ranges: every key must match.
		{func() *C { c := cmp("a", pb.Compare_VERSION, G, int64(0)); c.RangeEnd = []byte{0}; return c }(), true},
		{func() *C { c := cmp("a", pb.Compare_VERSION, E, int64(1)); c.RangeEnd = []byte("z"); return c }(), false},
		{func() *C { c := cmp("b", pb.Compare_VERSION, E, int64(1)); c.RangeEnd = []byte("d"); return c }(), true},
	}
	for i, tt := range tests {
		resp, err := e.Txn(&pb.TxnRequest{Compare: []*C{tt.c}}, ConsistentIndex{})
		if err != nil || resp.Succeeded != tt.want {
			t.Errorf("%d: %v %v: succeeded %v, want %v (err %v)", i, tt.c.Target, tt.c.Result, resp.GetSucceeded(), tt.want, err)
		}
	}
}

func TestTxnExecution(t *testing.T) {
	e, s := newExec(t, fakeLessor{7: true})
	seed(t, e)
	put := func(k, v string) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(v), PrevKv: true}}}
	}
	del := func(k, end string) *pb.RequestOp {
		d := &pb.DeleteRangeRequest{Key: []byte(k), PrevKv: true}
		if end != "" {
			d.RangeEnd = []byte(end)
		}
		return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: d}}
	}
	get := func(k string) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k)}}}
	}
	nested := func(r *pb.TxnRequest) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: r}}
	}
	never := []*pb.Compare{{Key: []byte("zz"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL}}

	// One revision for everything; reads see earlier writes of the txn.
	resp, err := e.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{
		put("x", "1"), get("x"), del("b", "c"), nested(&pb.TxnRequest{Compare: never, Failure: []*pb.RequestOp{put("y", "2")}}),
	}}, ConsistentIndex{Index: 100, Term: 3})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Revision != 9 || !resp.Succeeded || s.Rev() != 9 {
		t.Fatalf("rev %d succeeded %v store %d", resp.Header.Revision, resp.Succeeded, s.Rev())
	}
	if r := resp.Responses[1].GetResponseRange(); keys(r) != "x=1 count=1 more=false rev=9" {
		t.Fatalf("read own write: %s", keys(r))
	}
	if d := resp.Responses[2].GetResponseDeleteRange(); d.Deleted != 1 || string(d.PrevKvs[0].Key) != "b" || d.Header.Revision != 9 {
		t.Fatalf("delete: %v", d)
	}
	if n := resp.Responses[3].GetResponseTxn(); n.Succeeded || n.Responses[0].GetResponsePut().Header.Revision != 9 {
		t.Fatalf("nested: %v", n)
	}
	if s.ConsistentIndex() != 100 {
		t.Fatalf("consistent index %d", s.ConsistentIndex())
	}
	// Read-only txn: no new revision.
	resp, err = e.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{get("y")}}, ConsistentIndex{})
	if err != nil || resp.Header.Revision != 9 || keys(resp.Responses[0].GetResponseRange()) != "y=2 count=1 more=false rev=9" {
		t.Fatalf("read-only txn: %v %v", resp, err)
	}
	// Deleting nothing keeps the revision.
	resp, err = e.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{del("nope", "")}}, ConsistentIndex{})
	if err != nil || resp.Header.Revision != 9 || s.Rev() != 9 {
		t.Fatalf("empty delete txn: %v %v", resp, err)
	}

	errTests := []struct {
		name string
		req  *pb.TxnRequest
		err  error
	}{
		{"dup put", &pb.TxnRequest{Success: []*pb.RequestOp{put("k", "1"), put("k", "2")}}, ErrDuplicateKey},
		{"put+del", &pb.TxnRequest{Failure: []*pb.RequestOp{del("a", "z"), put("k", "2")}}, ErrDuplicateKey},
		{"nested put dup", &pb.TxnRequest{Success: []*pb.RequestOp{put("k", "1"), nested(&pb.TxnRequest{Success: []*pb.RequestOp{put("k", "1")}})}}, ErrDuplicateKey},
		{"nested del vs put", &pb.TxnRequest{Success: []*pb.RequestOp{put("k", "1"), nested(&pb.TxnRequest{Failure: []*pb.RequestOp{del("k", "")}})}}, ErrDuplicateKey},
		{"lease", &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k"), Lease: 9}}}}}, ErrLeaseNotFound},
		{"ignore value missing", &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("nope"), IgnoreValue: true}}}}}, ErrKeyNotFound},
		{"future range", &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a"), Revision: 10}}}}}, mvcc.ErrFutureRev},
	}
	for _, tt := range errTests {
		if _, err := e.Txn(tt.req, ConsistentIndex{}); !errors.Is(err, tt.err) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.err)
		}
	}
	// etcd 3.6 panics on this one (the from-key delete removes "b" before
	// the ignore_value put); cairn rejects it before writing anything.
	fromDel := &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}}}}
	ignore := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("c"), IgnoreValue: true}}}
	if _, err := e.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{nested(&pb.TxnRequest{Success: []*pb.RequestOp{fromDel}}), ignore}}, ConsistentIndex{}); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("ignore_value after from-key delete: %v", err)
	}
	// Same key on both branches of one nested txn is fine.
	ok := &pb.TxnRequest{Success: []*pb.RequestOp{nested(&pb.TxnRequest{Success: []*pb.RequestOp{put("k", "1")}, Failure: []*pb.RequestOp{put("k", "2")}})}}
	if err := CheckDuplicates(ok); err != nil {
		t.Fatal(err)
	}
	if s.Rev() != 9 {
		t.Fatalf("failed txns changed the revision: %d", s.Rev())
	}
}

func TestPutOptions(t *testing.T) {
	e, _ := newExec(t, nil)
	if _, err := e.Put(&pb.PutRequest{Key: []byte("a"), Lease: 1}, ConsistentIndex{}); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("nil lessor: %v", err)
	}
	if _, err := e.Put(&pb.PutRequest{Key: []byte("a"), IgnoreValue: true}, ConsistentIndex{}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("ignore value: %v", err)
	}
	e.Put(&pb.PutRequest{Key: []byte("a"), Value: []byte("v1")}, ConsistentIndex{})
	resp, err := e.Put(&pb.PutRequest{Key: []byte("a"), IgnoreValue: true, PrevKv: true}, ConsistentIndex{})
	if err != nil || string(resp.PrevKv.Value) != "v1" || resp.Header.Revision != 3 {
		t.Fatalf("ignore value put: %v %v", resp, err)
	}
	r, _ := e.Range(&pb.RangeRequest{Key: []byte("a")})
	if kv := r.Kvs[0]; string(kv.Value) != "v1" || kv.Version != 2 || kv.CreateRevision != 2 || kv.ModRevision != 3 {
		t.Fatalf("after ignore_value: %v", kv)
	}
	if _, _, err := e.Compact(&pb.CompactionRequest{Revision: 4}, ConsistentIndex{}); !errors.Is(err, mvcc.ErrFutureRev) {
		t.Fatalf("future compact: %v", err)
	}
	cr, ch, err := e.Compact(&pb.CompactionRequest{Revision: 3}, ConsistentIndex{})
	if err != nil || cr.Header.Revision != 3 {
		t.Fatalf("compact: %v %v", cr, err)
	}
	<-ch
	if _, err := e.Range(&pb.RangeRequest{Key: []byte("a"), Revision: 2}); !errors.Is(err, mvcc.ErrCompacted) {
		t.Fatalf("compacted range: %v", err)
	}
}
