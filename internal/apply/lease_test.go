package apply

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/internal/lease"
	"github.com/cairnkv/cairn/internal/mvcc"
	"github.com/cairnkv/cairn/internal/schema"
	"github.com/cairnkv/cairn/internal/txn"
)

func grant(id, ttl int64) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: id, TTL: ttl}}
}

func revoke(id int64) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}}
}

func putLease(k, v string, id int64) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(k), Value: []byte(v), Lease: id}}
}

func checkpoint(id, remaining int64) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{LeaseCheckpoint: &pb.LeaseCheckpointRequest{Checkpoints: []*pb.LeaseCheckpoint{{ID: id, Remaining_TTL: remaining}}}}
}

func (e *env) leaseRecords() map[int64]schema.LeaseRecord {
	e.t.Helper()
	rv := e.be.Read()
	defer rv.End()
	recs, err := schema.ReadLeases(rv)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[int64]schema.LeaseRecord{}
	for _, r := range recs {
		out[r.ID] = r
	}
	return out
}

func TestLeaseGrantResultsAndErrors(t *testing.T) {
	e := openEnv(t, t.TempDir())
	rs := e.feed(
		normal(1, put("a", "1")),
		normal(2, grant(7, 30)),
		normal(3, grant(8, 1)),                // raised to the minimum TTL
		normal(4, grant(7, 60)),               // exists
		normal(5, grant(9, lease.MaxTTL+1)),   // too large
		normal(6, grant(0, 5)),                // ID 0 reaches apply only from a broken proposer: not found
		normal(7, grant(-3, lease.MaxTTL)),    // negative IDs are a client's to choose
		normal(8, putLease("k", "v", 5)),      // unknown lease
		normal(9, putLease("k", "v", 7)),      // attaches
		normal(10, &pb.InternalRaftRequest{}), // (nothing)
	)
	for _, c := range []struct {
		idx     uint64
		id, ttl int64
		err     error
	}{{2, 7, 30, nil}, {3, 8, 2, nil}, {4, 0, 0, lease.ErrExists}, {5, 0, 0, lease.ErrTTLTooLarge}, {6, 0, 0, lease.ErrNotFound}, {7, -3, lease.MaxTTL, nil}} {
		r := rs[c.idx]
		if c.err != nil {
			if !errors.Is(r.Err, c.err) || r.Resp != nil {
				t.Errorf("entry %d: %+v, want %v", c.idx, r, c.err)
			}
			continue
		}
		resp, ok := r.Resp.(*pb.LeaseGrantResponse)
		if r.Err != nil || !ok || resp.ID != c.id || resp.TTL != c.ttl || resp.Header.Revision != 2 {
			t.Errorf("entry %d: %+v", c.idx, r)
		}
	}
	if !errors.Is(rs[8].Err, txn.ErrLeaseNotFound) {
		t.Errorf("put with unknown lease: %v", rs[8].Err)
	}
	if r := rs[9]; r.Err != nil || r.Resp.(*pb.PutResponse).Header.Revision != 3 {
		t.Errorf("put with lease: %+v", r)
	}
	// Errors and grants alike record their entry, and grants add no revision.
	if s := e.state(); s.ci != 9 || s.rev != 3 {
		t.Errorf("state %d/%d", s.ci, s.rev)
	}
	recs := e.leaseRecords()
	if len(recs) != 3 || recs[7] != (schema.LeaseRecord{ID: 7, TTL: 30}) || recs[8].TTL != 2 || recs[-3].TTL != lease.MaxTTL {
		t.Errorf("records %+v", recs)
	}
}

// A revoke deletes every attached key in one revision and one backend
// transaction, with the lease record; keys moved to another lease or
// deleted before stay as they are.
func TestLeaseRevokeDeletesKeysInOneRevision(t *testing.T) {
	dir := t.TempDir()
	e := openEnv(t, dir)
	e.feed(
		normal(1, grant(1, 60)),
		normal(2, grant(2, 60)),
		normal(3, putLease("c", "1", 1)),
		normal(4, putLease("a", "1", 1)),
		normal(5, putLease("b", "1", 1)),
		normal(6, putLease("moved", "1", 1)),
		normal(7, putLease("moved", "2", 2)),
		normal(8, putLease("gone", "1", 1)),
		normal(9, del("gone", "")),
		normal(10, put("plain", "1")),
	)
	st, _ := e.le.TimeToLive(1, true)
	if fmt.Sprintf("%q", st.Keys) != `["a" "b" "c"]` {
		t.Fatalf("keys of lease 1: %q", st.Keys)
	}
	// The attachments survive a restart: the store reattaches them.
	e.close()
	e = openEnv(t, dir)
	if st, _ := e.le.TimeToLive(1, true); fmt.Sprintf("%q", st.Keys) != `["a" "b" "c"]` {
		t.Fatalf("keys of lease 1 after restart: %q", st.Keys)
	}
	before := e.kv.Rev()
	rs := e.feed(normal(11, revoke(1)), normal(12, revoke(1)), normal(13, revoke(2)), normal(14, grant(3, 5)), normal(15, revoke(3)))
	if r := rs[11]; r.Err != nil || r.Resp.(*pb.LeaseRevokeResponse).Header.Revision != before+1 {
		t.Fatalf("revoke: %+v", r)
	}
	if !errors.Is(rs[12].Err, lease.ErrNotFound) {
		t.Fatalf("revoke twice: %v", rs[12].Err)
	}
	if rs[13].Err != nil || rs[13].Resp.(*pb.LeaseRevokeResponse).Header.Revision != before+2 {
		t.Fatalf("revoke 2: %+v", rs[13])
	}
	// a lease without keys revokes without a revision
	if rs[15].Err != nil || rs[15].Resp.(*pb.LeaseRevokeResponse).Header.Revision != before+2 || e.kv.Rev() != before+2 {
		t.Fatalf("revoke of an empty lease: %+v, rev %d", rs[15], e.kv.Rev())
	}
	rt := e.kv.Read()
	defer rt.End()
	res, err := rt.Range([]byte("a"), []byte("\x00"), mvcc.RangeOptions{})
	if err != nil || len(res.KVs) != 1 || string(res.KVs[0].Key) != "plain" {
		t.Fatalf("left: %+v, %v", res.KVs, err)
	}
	// all of lease 1's keys went in one revision, in key order
	old, err := rt.Range([]byte("a"), []byte("d"), mvcc.RangeOptions{Rev: before})
	if err != nil || len(old.KVs) != 3 {
		t.Fatalf("before the revoke: %+v, %v", old.KVs, err)
	}
	if recs := e.leaseRecords(); len(recs) != 0 {
		t.Fatalf("records left: %+v", recs)
	}
}

// Checkpoints persist once the cluster version is 3.6 (or with the
// LeaseCheckpointPersist gate), as in etcd 3.6.
func TestLeaseCheckpointPersistence(t *testing.T) {
	e := openEnv(t, t.TempDir())
	e.feed(normal(1, grant(1, 600)), normal(2, checkpoint(1, 500)), normal(3, checkpoint(99, 5)))
	if r := e.leaseRecords()[1]; r.RemainingTTL != 0 {
		t.Fatalf("persisted before the cluster version is known: %+v", r)
	}
	if err := e.cl.SetVersion("3.6.0", nil); err != nil {
		t.Fatal(err)
	}
	rs := e.feed(normal(4, checkpoint(1, 400)))
	if rs[4].Err != nil || e.leaseRecords()[1].RemainingTTL != 400 {
		t.Fatalf("checkpoint at 3.6: %+v, %+v", rs[4], e.leaseRecords())
	}
	e.cl.SetVersion("3.5.0", nil)
	e.feed(normal(5, checkpoint(1, 300)))
	if r := e.leaseRecords()[1]; r.RemainingTTL != 400 {
		t.Fatalf("persisted at 3.5 without the gate: %+v", r)
	}
	e.a.SetLessor(e.le, true)
	e.feed(normal(6, checkpoint(1, 200)))
	if r := e.leaseRecords()[1]; r.RemainingTTL != 200 {
		t.Fatalf("not persisted with the gate: %+v", r)
	}
	if e.a.ConsistentIndex() != 6 {
		t.Fatalf("consistent index %d", e.a.ConsistentIndex())
	}
}

// Lease requests under the alarms etcd applies them under: NOSPACE refuses
// grants; CORRUPT refuses grants and revokes but not checkpoints.
func TestLeaseRequestsUnderAlarms(t *testing.T) {
	e := openEnv(t, t.TempDir())
	e.feed(normal(1, grant(1, 60)))
	e.feed(normal(2, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: 1, Alarm: pb.AlarmType_NOSPACE}}))
	rs := e.feed(normal(3, grant(2, 60)), normal(4, checkpoint(1, 30)), normal(5, revoke(1)))
	if !errors.Is(rs[3].Err, ErrNoSpace) || e.le.Lookup(2) {
		t.Fatalf("grant under NOSPACE: %v", rs[3].Err)
	}
	if rs[4].Err != nil || rs[5].Err != nil || e.le.Lookup(1) {
		t.Fatalf("checkpoint/revoke under NOSPACE: %v %v", rs[4].Err, rs[5].Err)
	}
	e.feed(normal(6, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: 1, Alarm: pb.AlarmType_CORRUPT}}))
	rs = e.feed(normal(7, grant(3, 60)), normal(8, revoke(3)), normal(9, checkpoint(3, 1)))
	if !errors.Is(rs[7].Err, ErrCorrupt) || !errors.Is(rs[8].Err, ErrCorrupt) || rs[9].Err != nil {
		t.Fatalf("under CORRUPT: %v %v %v", rs[7].Err, rs[8].Err, rs[9].Err)
	}
	if e.a.ConsistentIndex() != 9 {
		t.Fatalf("consistent index %d", e.a.ConsistentIndex())
	}
}

// Without a lessor, lease entries are not consumed (the server always
// installs one; this keeps a half-wired applier from diverging).
func TestLeaseWithoutLessorIsUnsupported(t *testing.T) {
	e := openEnv(t, t.TempDir())
	e.a.SetLessor(nil, false)
	_, r := e.a.Normal(normal(1, grant(1, 60)))
	var ue *UnsupportedError
	if !errors.As(r.Err, &ue) || ue.Kind != "lease grant" || e.a.ConsistentIndex() != 0 {
		t.Fatalf("%+v", r)
	}
}

// Two members fed the same log with leases end with identical backends.
func TestLeaseDeterminism(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var ents []raftpb.Entry
	keys := []string{"a", "b", "c", "d", "e"}
	for i := uint64(1); i <= 300; i++ {
		id := int64(rng.IntN(6) + 1)
		var req *pb.InternalRaftRequest
		switch n := rng.IntN(10); {
		case n < 2:
			req = grant(id, int64(rng.IntN(100)))
		case n < 3:
			req = revoke(id)
		case n < 4:
			req = checkpoint(id, int64(rng.IntN(50)))
		case n < 8:
			req = putLease(keys[rng.IntN(len(keys))], fmt.Sprint(i), id*int64(rng.IntN(2)))
		default:
			req = del(keys[rng.IntN(len(keys))], "")
		}
		ents = append(ents, normal(i, req))
	}
	a, b := openEnv(t, t.TempDir()), openEnv(t, t.TempDir())
	ra, rb := a.feed(ents...), b.feed(ents...)
	revokes := 0
	for i := range ents {
		x, y := ra[uint64(i+1)], rb[uint64(i+1)]
		if fmt.Sprint(x.Resp) != fmt.Sprint(y.Resp) || fmt.Sprint(x.Err) != fmt.Sprint(y.Err) {
			t.Fatalf("entry %d: %v / %v vs %v / %v", i+1, x.Resp, x.Err, y.Resp, y.Err)
		}
		if _, ok := x.Resp.(*pb.LeaseRevokeResponse); ok {
			revokes++
		}
	}
	if sa, sb := a.state(), b.state(); sa != sb {
		t.Fatalf("states differ:\n%+v\n%+v", sa, sb)
	}
	if revokes == 0 {
		t.Fatal("no revoke succeeded: the log tests nothing")
	}
}
