package v3rpc

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/cairnkv/cairn/internal/txn"
)

// Request builders for the tables below.

func rangeOp(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k)}}}
}

func putOp(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte("v")}}}
}

// delOp deletes [k, end); end "" is the single key k.
func delOp(k, end string) *pb.RequestOp {
	d := &pb.DeleteRangeRequest{Key: []byte(k)}
	if end != "" {
		d.RangeEnd = []byte(end)
	}
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: d}}
}

func txnOp(then, els []*pb.RequestOp) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: then, Failure: els}}}
}

func ops(o ...*pb.RequestOp) []*pb.RequestOp { return o }

func cmp(k string) *pb.Compare {
	return &pb.Compare{Key: []byte(k), Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL}
}

func TestCheckRange(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *pb.RangeRequest
		want error
	}{
		{"ok", &pb.RangeRequest{Key: []byte("a")}, nil},
		{"ok with range end and sort", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("\x00"), SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_MOD}, nil},
		{"empty key", &pb.RangeRequest{}, rpctypes.ErrGRPCEmptyKey},
		{"empty key wins over bad sort", &pb.RangeRequest{SortOrder: 9}, rpctypes.ErrGRPCEmptyKey},
		// etcd 3.6 checkRangeRequest refuses enum values it does not know.
		{"unknown sort order", &pb.RangeRequest{Key: []byte("a"), SortOrder: 3}, rpctypes.ErrGRPCInvalidSortOption},
		{"unknown sort target", &pb.RangeRequest{Key: []byte("a"), SortTarget: 5}, rpctypes.ErrGRPCInvalidSortOption},
		{"negative sort order", &pb.RangeRequest{Key: []byte("a"), SortOrder: -1}, rpctypes.ErrGRPCInvalidSortOption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkRange(tc.r); !errors.Is(got, tc.want) {
				t.Fatalf("checkRange = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckPutDelete(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *pb.PutRequest
		want error
	}{
		{"ok", &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), Lease: 7}, nil},
		{"empty value is fine", &pb.PutRequest{Key: []byte("a")}, nil},
		{"empty key", &pb.PutRequest{Value: []byte("v")}, rpctypes.ErrGRPCEmptyKey},
		{"ignore value without value", &pb.PutRequest{Key: []byte("a"), IgnoreValue: true}, nil},
		{"ignore value with value", &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: true}, rpctypes.ErrGRPCValueProvided},
		{"ignore lease without lease", &pb.PutRequest{Key: []byte("a"), IgnoreLease: true}, nil},
		{"ignore lease with lease", &pb.PutRequest{Key: []byte("a"), Lease: 1, IgnoreLease: true}, rpctypes.ErrGRPCLeaseProvided},
		{"value checked before lease", &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: true, Lease: 1, IgnoreLease: true}, rpctypes.ErrGRPCValueProvided},
		{"empty key checked first", &pb.PutRequest{Value: []byte("v"), IgnoreValue: true}, rpctypes.ErrGRPCEmptyKey},
	} {
		t.Run("put/"+tc.name, func(t *testing.T) {
			if got := checkPut(tc.r); !errors.Is(got, tc.want) {
				t.Fatalf("checkPut = %v, want %v", got, tc.want)
			}
		})
	}
	if err := checkDelete(&pb.DeleteRangeRequest{}); !errors.Is(err, rpctypes.ErrGRPCEmptyKey) {
		t.Fatalf("checkDelete(empty key) = %v", err)
	}
	if err := checkDelete(&pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("\x00")}); err != nil {
		t.Fatalf("checkDelete(a, \\x00) = %v", err)
	}
}

func TestCheckTxn(t *testing.T) {
	n := func(k int, op func(string) *pb.RequestOp) []*pb.RequestOp {
		var out []*pb.RequestOp
		for i := range k {
			out = append(out, op(string(rune('a'+i))))
		}
		return out
	}
	cmps := func(k int) []*pb.Compare {
		var out []*pb.Compare
		for i := range k {
			out = append(out, cmp(string(rune('a'+i))))
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		r      *pb.TxnRequest
		maxOps int
		want   error
	}{
		{"empty txn", &pb.TxnRequest{}, 0, nil},
		{"at the limit", &pb.TxnRequest{Compare: cmps(3), Success: n(3, putOp), Failure: n(3, rangeOp)}, 3, nil},
		{"compares over the limit", &pb.TxnRequest{Compare: cmps(4)}, 3, rpctypes.ErrGRPCTooManyOps},
		{"success over the limit", &pb.TxnRequest{Success: n(4, putOp)}, 3, rpctypes.ErrGRPCTooManyOps},
		{"failure over the limit", &pb.TxnRequest{Failure: n(4, rangeOp)}, 3, rpctypes.ErrGRPCTooManyOps},
		// The limit is per branch, not the sum of the branches.
		{"branches are not summed", &pb.TxnRequest{Compare: cmps(2), Success: n(2, putOp), Failure: n(2, putOp)}, 2, nil},
		// A nested txn gets what its parent left: max - widest level above.
		{"nested within budget", &pb.TxnRequest{Success: ops(txnOp(n(2, putOp), nil))}, 3, nil},
		{"nested over budget", &pb.TxnRequest{Success: ops(txnOp(n(3, putOp), nil))}, 3, rpctypes.ErrGRPCTooManyOps},
		{"nested in failure over budget", &pb.TxnRequest{Failure: ops(rangeOp("x"), txnOp(nil, n(2, putOp)))}, 3, rpctypes.ErrGRPCTooManyOps},
		{"doubly nested over budget", &pb.TxnRequest{Success: ops(txnOp(ops(txnOp(n(3, putOp), nil)), nil))}, 4, rpctypes.ErrGRPCTooManyOps},
		{"doubly nested within budget", &pb.TxnRequest{Success: ops(txnOp(ops(txnOp(n(1, putOp), nil)), nil))}, 3, nil},
		{"compare with empty key", &pb.TxnRequest{Compare: []*pb.Compare{cmp("a"), cmp("")}}, 8, rpctypes.ErrGRPCEmptyKey},
		{"put with empty key", &pb.TxnRequest{Success: ops(putOp(""))}, 8, rpctypes.ErrGRPCEmptyKey},
		{"range with empty key in failure", &pb.TxnRequest{Failure: ops(rangeOp(""))}, 8, rpctypes.ErrGRPCEmptyKey},
		{"delete with empty key", &pb.TxnRequest{Success: ops(delOp("", ""))}, 8, rpctypes.ErrGRPCEmptyKey},
		{"range with bad sort", &pb.TxnRequest{Success: ops(&pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a"), SortTarget: 9}}})}, 8, rpctypes.ErrGRPCInvalidSortOption},
		{"put with value and ignore_value", &pb.TxnRequest{Success: ops(&pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: true}}})}, 8, rpctypes.ErrGRPCValueProvided},
		{"nested put with empty key", &pb.TxnRequest{Success: ops(txnOp(nil, ops(putOp(""))))}, 8, rpctypes.ErrGRPCEmptyKey},
		{"nested compare with empty key", &pb.TxnRequest{Success: ops(&pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Compare: []*pb.Compare{cmp("")}}}})}, 8, rpctypes.ErrGRPCEmptyKey},
		// etcd answers an operation with no request set with "key not found".
		{"empty op", &pb.TxnRequest{Success: ops(&pb.RequestOp{})}, 8, rpctypes.ErrGRPCKeyNotFound},
		{"nested empty op", &pb.TxnRequest{Failure: ops(txnOp(ops(&pb.RequestOp{}), nil))}, 8, rpctypes.ErrGRPCKeyNotFound},
		// The size check comes before any per-op check.
		{"too many ops before empty key", &pb.TxnRequest{Success: ops(putOp(""), putOp("b"), putOp("c"))}, 2, rpctypes.ErrGRPCTooManyOps},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkTxn(tc.r, tc.maxOps); !errors.Is(got, tc.want) {
				t.Fatalf("checkTxn = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCheckOverlaps follows etcd 3.6's checkIntervals. The expectations
// marked "etcd" were checked against etcd's own function (with its adt
// interval tree), not derived from cairn's code.
func TestCheckOverlaps(t *testing.T) {
	dup := rpctypes.ErrGRPCDuplicateKey
	for _, tc := range []struct {
		name string
		ops  []*pb.RequestOp
		want error
	}{
		{"nothing", nil, nil},
		{"distinct puts", ops(putOp("a"), putOp("b")), nil},
		{"duplicate put", ops(putOp("a"), putOp("a")), dup},
		{"reads never conflict", ops(rangeOp("a"), putOp("a"), rangeOp("a")), nil},
		{"put and delete of the key", ops(putOp("a"), delOp("a", "")), dup},
		{"delete listed before put", ops(delOp("a", ""), putOp("a")), dup},
		{"put inside deleted range", ops(putOp("abc"), delOp("a", "b")), dup},
		{"put at range start", ops(delOp("a", "b"), putOp("a")), dup},
		{"put at range end is outside", ops(delOp("a", "b"), putOp("b")), nil},
		{"put just below range end", ops(delOp("a", "b"), putOp("a\xff")), dup},
		{"put outside range", ops(putOp("abc"), delOp("abb", "abc")), nil},
		{"single-key delete is a point", ops(delOp("a", ""), putOp("a\x00")), nil},
		{"deletes may overlap each other", ops(delOp("a", ""), delOp("a", ""), delOp("a", "z")), nil},
		{"range end below key is empty", ops(delOp("b", "a"), putOp("b")), nil},
		// etcd: a "\x00" range end ("from key", "all keys") is not special in
		// checkIntervals, so the interval is empty and puts never conflict
		// with it (the txn layer refuses the one case etcd would panic on).
		{"etcd: from-key delete, put after", ops(delOp("a", "\x00"), putOp("b")), nil},
		{"etcd: from-key delete, put at start", ops(delOp("a", "\x00"), putOp("a")), nil},
		{"etcd: delete all, put", ops(delOp("\x00", "\x00"), putOp("\x00"), putOp("z")), nil},
		{"etcd: nested from-key delete, put", ops(txnOp(ops(delOp("a", "\x00")), nil), putOp("b")), nil},
		{"etcd: from-key delete, nested put", ops(delOp("a", "\x00"), txnOp(ops(putOp("b")), nil)), nil},
		{"from-key delete does not hide a real overlap", ops(delOp("a", "\x00"), delOp("x", "y"), putOp("xa")), dup},
		// Nested txns.
		{"put then nested delete", ops(putOp("a"), txnOp(ops(delOp("a", "")), nil)), dup},
		{"delete then nested put", ops(delOp("a", ""), txnOp(ops(putOp("a")), nil)), dup},
		{"delete then nested else put", ops(delOp("a", "b"), txnOp(nil, ops(putOp("ab")))), dup},
		{"nested put and outer put", ops(txnOp(ops(putOp("a")), nil), putOp("a")), dup},
		{"nested else delete, outer put", ops(txnOp(nil, ops(delOp("a", "b"))), putOp("a")), dup},
		{"then and else of one txn may put the same key", ops(txnOp(ops(putOp("a")), ops(putOp("a")))), nil},
		{"two nested txns putting the same key", ops(txnOp(ops(putOp("a")), ops(putOp("a"))), txnOp(ops(putOp("a")), ops(putOp("a")))), dup},
		{"then of one txn, else of another", ops(txnOp(ops(putOp("a")), nil), txnOp(nil, ops(putOp("a")))), dup},
		{"else of one txn, then of another", ops(txnOp(nil, ops(putOp("a"))), txnOp(ops(putOp("a")), nil)), dup},
		{"etcd: nested delete earlier, nested put later", ops(txnOp(ops(delOp("a", "")), nil), txnOp(ops(putOp("a")), nil)), dup},
		{"etcd: nested put earlier, nested delete later", ops(txnOp(ops(putOp("a")), nil), txnOp(ops(delOp("a", "")), nil)), nil},
		{"nested deletes of one key", ops(txnOp(ops(delOp("a", "")), nil), txnOp(ops(delOp("a", "")), ops(delOp("a", "")))), nil},
		{"unrelated delete, nested then/else put", ops(delOp("abb", "abc"), txnOp(ops(putOp("abc")), ops(putOp("abc")))), nil},
		{"conflict deep inside", ops(txnOp(ops(txnOp(ops(putOp("k"), putOp("k")), nil)), nil)), dup},
		{"deep delete reaches the top level", ops(txnOp(ops(txnOp(nil, ops(delOp("k", "l")))), nil), putOp("kk")), dup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := toGRPCError(txn.CheckDuplicates(&pb.TxnRequest{Success: tc.ops}))
			if !errors.Is(got, tc.want) {
				t.Fatalf("CheckDuplicates = %v, want %v", got, tc.want)
			}
		})
	}
}
