package apply

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/lease"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/mvcc"
	"github.com/cairnkv/cairn/internal/schema"
	"github.com/cairnkv/cairn/internal/txn"
)

const testClusterID = 0x1000

// env is one member's state machine on a real backend in a temp dir.
type env struct {
	t      *testing.T
	path   string
	be     *backend.Backend
	kv     *mvcc.Store
	cl     *membership.Cluster
	alarms *Alarms
	le     *lease.Lessor
	a      *Applier
	// cs is the conf state "raft" returned last (see toRaft).
	cs raftpb.ConfState
}

// openEnv opens (or reopens) the backend at dir and builds an Applier from
// its consistent index, as the server does at start.
func openEnv(t *testing.T, dir string) *env {
	t.Helper()
	bc := backend.DefaultConfig(filepath.Join(dir, "db"))
	bc.MmapSize = 0
	be, err := backend.Open(bc)
	if err != nil {
		t.Fatal(err)
	}
	tx := be.Lock()
	err = schema.Init(tx)
	if uerr := tx.Unlock(); err == nil {
		err = uerr
	}
	if err != nil {
		t.Fatal(err)
	}
	// As the server: leases load before the store attaches keys to them.
	le := lease.New(lease.Config{MinTTL: 2})
	rv := be.Read()
	recs, err := schema.ReadLeases(rv)
	rv.End()
	if err != nil {
		t.Fatal(err)
	}
	le.Recover(recs)
	mcfg := mvcc.DefaultConfig()
	mcfg.Lessor = le
	kv, err := mvcc.New(be, mcfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, path: dir, be: be, kv: kv, cl: membership.NewCluster(testClusterID, 1, 1), alarms: &Alarms{}, le: le}
	rv = be.Read()
	ci, _, err := schema.ReadConsistentIndex(rv)
	if err == nil {
		err = e.alarms.Restore(rv)
	}
	rv.End()
	if err != nil {
		t.Fatal(err)
	}
	e.a = New(zap.NewNop(), kv, e.cl, e.alarms, ci, txn.New(kv, le))
	e.a.SetLessor(le, false)
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	if e.kv == nil {
		return
	}
	<-e.kv.WaitCompaction()
	e.kv.Close()
	if err := e.be.Close(); err != nil {
		e.t.Errorf("close backend: %v", err)
	}
	e.kv = nil
}

// toRaft stands in for raft.Node.ApplyConfChange: NodeID 0 is a no-op.
func (e *env) toRaft(cc raftpb.ConfChange) *raftpb.ConfState {
	if cc.NodeID != 0 {
		switch cc.Type {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeUpdateNode:
			e.cs.Voters = append(slices.DeleteFunc(e.cs.Voters, func(id uint64) bool { return id == cc.NodeID }), cc.NodeID)
			e.cs.Learners = slices.DeleteFunc(e.cs.Learners, func(id uint64) bool { return id == cc.NodeID })
		case raftpb.ConfChangeAddLearnerNode:
			e.cs.Learners = append(e.cs.Learners, cc.NodeID)
		case raftpb.ConfChangeRemoveNode:
			e.cs.Voters = slices.DeleteFunc(e.cs.Voters, func(id uint64) bool { return id == cc.NodeID })
			e.cs.Learners = slices.DeleteFunc(e.cs.Learners, func(id uint64) bool { return id == cc.NodeID })
		}
	}
	cs := e.cs
	cs.Voters, cs.Learners = slices.Clone(cs.Voters), slices.Clone(cs.Learners)
	return &cs
}

// feed applies entries as the apply loop does and returns the results of
// normal entries by index.
func (e *env) feed(ents ...raftpb.Entry) map[uint64]Result {
	e.t.Helper()
	out := map[uint64]Result{}
	for _, ent := range ents {
		switch ent.Type {
		case raftpb.EntryNormal:
			_, r := e.a.Normal(ent)
			if r.Physical != nil {
				<-r.Physical
			}
			out[ent.Index] = r
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := cc.Unmarshal(ent.Data); err != nil {
				e.t.Fatal(err)
			}
			out[ent.Index] = Result{Err: e.a.ConfChange(ent, cc, e.toRaft)}
		}
	}
	return out
}

// dump is every bucket's content, committed or not.
func (e *env) dump() string {
	var b bytes.Buffer
	rv := e.be.Read()
	defer rv.End()
	for _, bucket := range rv.Buckets() {
		fmt.Fprintf(&b, "[%s]\n", bucket)
		rv.ForEach(bucket, func(k, v []byte) bool {
			fmt.Fprintf(&b, "%x=%x\n", k, v)
			return true
		})
	}
	return b.String()
}

type state struct {
	rev    int64
	hashKV uint32
	hash   uint32
	dump   string
	ci     uint64
}

func (e *env) state() state {
	e.t.Helper()
	<-e.kv.WaitCompaction()
	h, rev, err := e.kv.HashByRev(0)
	if err != nil {
		e.t.Fatal(err)
	}
	bh, _, err := e.kv.Hash()
	if err != nil {
		e.t.Fatal(err)
	}
	return state{rev: rev, hashKV: h.Hash, hash: bh, dump: e.dump(), ci: e.a.ConsistentIndex()}
}

// Entry builders.

func normal(index uint64, req *pb.InternalRaftRequest) raftpb.Entry {
	req.Header = &pb.RequestHeader{ID: 1000 + index}
	b, err := req.Marshal()
	if err != nil {
		panic(err)
	}
	return raftpb.Entry{Index: index, Term: 2, Type: raftpb.EntryNormal, Data: b}
}

func put(k, v string) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}}
}

func del(k, end string) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte(end)}}
}

func txnPut(k, v string) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{Txn: &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte(k), Target: pb.Compare_VERSION, Result: pb.Compare_GREATER}},
		Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}}}},
		Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("zz")}}}},
	}}
}

func confEntry(t *testing.T, index uint64, typ raftpb.ConfChangeType, m *membership.Member, promote bool) raftpb.Entry {
	t.Helper()
	cc := raftpb.ConfChange{ID: 5000 + index, Type: typ, NodeID: m.ID}
	if typ != raftpb.ConfChangeRemoveNode {
		ctx, err := membership.MarshalContext(m, promote)
		if err != nil {
			t.Fatal(err)
		}
		cc.Context = ctx
	}
	b, err := cc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raftpb.Entry{Index: index, Term: 2, Type: raftpb.EntryConfChange, Data: b}
}

var now = time.Unix(1700000000, 0)

func member(name, url string) *membership.Member {
	return membership.NewMember(name, []string{url}, "tok", &now)
}

// history is a log touching every kind of entry the applier handles.
func history(t *testing.T) []raftpb.Entry {
	m1 := member("m1", "http://m1:2380")
	return []raftpb.Entry{
		confEntry(t, 1, raftpb.ConfChangeAddNode, m1, false),
		{Index: 2, Term: 2}, // a new leader's empty entry
		normal(3, &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
			Member_ID: m1.ID, MemberAttributes: &membershippb.Attributes{Name: "m1", ClientUrls: []string{"http://m1:2379"}}}}),
		normal(4, &pb.InternalRaftRequest{ClusterVersionSet: &membershippb.ClusterVersionSetRequest{Ver: "3.6.0"}}),
		normal(5, put("a", "1")),
		normal(6, put("b", "2")),
		normal(7, put("a", "3")),
		normal(8, txnPut("a", "4")),
		normal(9, del("b", "")),
		normal(10, put("c", "5")),
		normal(11, &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: 4}}),
		normal(12, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: m1.ID, Alarm: pb.AlarmType_CORRUPT}}),
		normal(13, put("d", "6")),
		normal(14, del("a", "\x00")),
		normal(15, put("e", "7")),
	}
}

// TestReplayIsIdempotent: a backend that already holds entries up to its
// consistent index ends, after the same log is fed again from the start,
// exactly where a member that applied the log once ends — whatever point
// the backend had reached.
func TestReplayIsIdempotent(t *testing.T) {
	ents := history(t)
	ref := openEnv(t, t.TempDir())
	ref.feed(ents...)
	want := ref.state()
	// The CORRUPT alarm at 12 makes the three writes after it refused.
	if want.ci != 15 || want.rev != 7 {
		t.Fatalf("reference state: ci %d rev %d", want.ci, want.rev)
	}
	for _, k := range []int{0, 1, 2, 5, 8, 11, 12, 14, 15} {
		t.Run(fmt.Sprint("crash after ", k), func(t *testing.T) {
			dir := t.TempDir()
			first := openEnv(t, dir)
			first.feed(ents[:k]...)
			first.close()
			re := openEnv(t, dir)
			if got := re.a.ConsistentIndex(); got != uint64(k) {
				t.Fatalf("reopened consistent index %d, want %d", got, k)
			}
			res := re.feed(ents...)
			for i := 1; i <= k; i++ {
				if r := res[uint64(i)]; r.Resp != nil || r.Err != nil {
					t.Fatalf("entry %d below the consistent index was applied again: %+v", i, r)
				}
			}
			if got := re.state(); got != want {
				t.Fatalf("after replay:\n%+v\nwant\n%+v", got, want)
			}
			// Membership is rolled forward in memory even for skipped entries.
			if ms := re.cl.Members(); len(ms) != 1 || ms[0].Name != "m1" {
				t.Fatalf("members after replay: %+v", ms)
			}
			if v := re.cl.Version(); k >= 4 && v != "3.6.0" {
				t.Fatalf("cluster version after replay %q", v)
			}
			// New entries apply on top (once the alarm is cleared).
			r := re.feed(normal(16, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, MemberID: re.cl.Members()[0].ID, Alarm: pb.AlarmType_CORRUPT}}),
				normal(17, put("f", "8")))[17]
			if r.Err != nil || r.Resp.(*pb.PutResponse).Header.Revision != want.rev+1 {
				t.Fatalf("entry after replay: %+v", r)
			}
		})
	}
}

func TestEmptyLegacyAndUnsupportedEntries(t *testing.T) {
	e := openEnv(t, t.TempDir())
	e.feed(normal(1, put("a", "1")))
	before := e.state()

	legacy, err := (&pb.Request{ID: 77, Method: "PUT", Path: "/0/members/8e9e05c52164694d/attributes", Val: `{"name":"x"}`}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		ent     raftpb.Entry
		wantID  uint64
		wantErr error
	}{
		{"empty entry", raftpb.Entry{Index: 2, Term: 3}, 0, nil},
		{"legacy v2 request", raftpb.Entry{Index: 3, Term: 3, Data: legacy}, 77, nil},
		{"undecodable", raftpb.Entry{Index: 4, Term: 3, Data: []byte{0xff, 0xff, 0xff}}, 0, ErrUnsupported},
		{"auth", normal(6, &pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}), 1006, ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, r := e.a.Normal(tc.ent)
			if id != tc.wantID || !errIs(r.Err, tc.wantErr) || r.Resp != nil {
				t.Fatalf("Normal = %d, %+v; want %d, %v", id, r, tc.wantID, tc.wantErr)
			}
			// An unsupported entry is not consumed: the consistent index
			// stays at the last entry applied.
			wantCI := tc.ent.Index
			if tc.wantErr != nil {
				wantCI = 3
			}
			if got := e.a.ConsistentIndex(); got != wantCI {
				t.Fatalf("consistent index %d, want %d", got, wantCI)
			}
			if ci, term := e.kv.ConsistentIndexTerm(); ci != wantCI || term != 3 && term != 2 {
				t.Fatalf("store consistent index %d/%d", ci, term)
			}
			if s := e.state(); s.rev != before.rev || s.hashKV != before.hashKV {
				t.Fatalf("key space changed: %+v", s)
			}
		})
	}
	// Replaying them below the consistent index records nothing.
	ci, term := e.kv.ConsistentIndexTerm()
	for _, ent := range []raftpb.Entry{{Index: 2, Term: 3}, {Index: 3, Term: 3, Data: legacy}} {
		e.a.Normal(ent)
	}
	if gci, gterm := e.kv.ConsistentIndexTerm(); gci != ci || gterm != term || e.a.ConsistentIndex() != ci {
		t.Fatalf("replay moved the consistent index to %d/%d", gci, gterm)
	}
}

func errIs(err, target error) bool {
	if target == nil {
		return err == nil
	}
	return err != nil && errors.Is(err, target)
}

// TestDeterminism feeds two appliers the same random log; their key space,
// backend and results must be identical.
func TestDeterminism(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ents := []raftpb.Entry{confEntry(t, 1, raftpb.ConfChangeAddNode, member("m1", "http://m1:2380"), false)}
	keys := []string{"a", "b", "c", "d", "e", "f"}
	rev := int64(1)
	for i := uint64(2); i <= 400; i++ {
		k := keys[rng.IntN(len(keys))]
		var req *pb.InternalRaftRequest
		switch n := rng.IntN(20); {
		case n < 10:
			req = put(k, fmt.Sprint(i))
		case n < 13:
			req = del(k, keys[rng.IntN(len(keys))])
		case n < 17:
			req = txnPut(k, fmt.Sprint(i))
		case n < 18:
			req = &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: rev / 2}}
		default:
			req = &pb.InternalRaftRequest{Range: &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("\x00")}}
		}
		rev++ // an upper bound is enough for compaction targets
		ents = append(ents, normal(i, req))
	}
	a, b := openEnv(t, t.TempDir()), openEnv(t, t.TempDir())
	ra, rb := a.feed(ents...), b.feed(ents...)
	for i := range ents {
		x, y := ra[uint64(i+1)], rb[uint64(i+1)]
		if fmt.Sprint(x.Resp) != fmt.Sprint(y.Resp) || fmt.Sprint(x.Err) != fmt.Sprint(y.Err) {
			t.Fatalf("entry %d: results differ: %v / %v vs %v / %v", i+1, x.Resp, x.Err, y.Resp, y.Err)
		}
	}
	sa, sb := a.state(), b.state()
	if sa != sb {
		t.Fatalf("states differ:\n%+v\n%+v", sa, sb)
	}
	if sa.ci != 400 || sa.rev < 100 {
		t.Fatalf("state %+v: the log did not apply", sa)
	}
}

// TestReplayWakesNoProposer: an entry at or below the consistent index is
// not applied again, and its request ID is not returned, so no proposer is
// woken with an empty result (one can wait only when the backend got ahead
// of the WAL; it then times out, as in etcd).
func TestReplayWakesNoProposer(t *testing.T) {
	e := openEnv(t, t.TempDir())
	e.feed(normal(1, put("a", "1")), normal(2, put("b", "2")))
	id, r := e.a.Normal(normal(2, put("c", "3")))
	if id != 0 || r.Resp != nil || r.Err != nil {
		t.Fatalf("replayed entry: Normal = %d, %+v; want 0 and an empty result", id, r)
	}
}
