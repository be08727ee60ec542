package apply

import (
	"errors"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/schema"
)

// persisted reads the members bucket and the conf state the backend holds.
func (e *env) persisted() (map[uint64]*membership.Member, map[uint64]bool, *raftpb.ConfState) {
	e.t.Helper()
	rv := e.be.Read()
	defer rv.End()
	raw, removed, err := schema.ReadMembers(rv)
	if err != nil {
		e.t.Fatal(err)
	}
	ms := map[uint64]*membership.Member{}
	for id, b := range raw {
		m, err := membership.UnmarshalMember(b)
		if err != nil {
			e.t.Fatal(err)
		}
		ms[id] = m
	}
	cs, err := schema.ReadConfState(rv)
	if err != nil {
		e.t.Fatal(err)
	}
	return ms, removed, cs
}

// TestConfChanges applies a sequence of conf changes; each step states the
// error the proposer gets and whether raft got the change or a no-op.
// Rejected changes still record the consistent index and the conf state.
func TestConfChanges(t *testing.T) {
	e := openEnv(t, t.TempDir())
	m1 := member("m1", "http://m1:2380")
	m2 := member("m2", "http://m2:2380")
	m3 := member("m3", "http://m3:2380")
	m4 := member("m4", "http://m4:2380")
	moved := m2.Clone()
	moved.PeerURLs = []string{"http://m2b:2380"}
	sameURL := membership.NewMember("m5", []string{"http://m1:2380", "http://m5:2380"}, "tok", &now)
	notM1 := m1.Clone()
	notM1.ID = m2.ID // context names another member than NodeID
	badCtx := confEntry(t, 0, raftpb.ConfChangeAddNode, m4, false)
	{
		var cc raftpb.ConfChange
		_ = cc.Unmarshal(badCtx.Data)
		cc.Context = []byte("{not json")
		badCtx.Data, _ = cc.Marshal()
	}

	steps := []struct {
		name    string
		ent     func(i uint64) raftpb.Entry
		wantErr error
		// voters and learners after the step
		voters, learners []uint64
	}{
		{"add m1", func(i uint64) raftpb.Entry { return confEntry(t, i, raftpb.ConfChangeAddNode, m1, false) }, nil, []uint64{m1.ID}, nil},
		{"add m1 again", func(i uint64) raftpb.Entry { return confEntry(t, i, raftpb.ConfChangeAddNode, m1, false) }, membership.ErrIDExists, []uint64{m1.ID}, nil},
		{"add with a taken peer URL", func(i uint64) raftpb.Entry { return confEntry(t, i, raftpb.ConfChangeAddNode, sameURL, false) }, membership.ErrPeerURLExists, []uint64{m1.ID}, nil},
		{"add learner m2", func(i uint64) raftpb.Entry { return confEntry(t, i, raftpb.ConfChangeAddLearnerNode, m2, false) }, nil, []uint64{m1.ID}, []uint64{m2.ID}},
		{"second learner over --max-learners", func(i uint64) raftpb.Entry { return confEntry(t, i, raftpb.ConfChangeAddLearnerNode, m3, false) }, membership.ErrTooManyLearners, []uint64{m1.ID}, []uint64{m2.ID}},
		{"promote a voter", func(i uint64) raftpb.Entry { return confEntry(t, i, raftpb.ConfChangeAddNode, m1, true) }, membership.ErrMemberNotLearner, []uint64{m1.ID}, []uint64{m2.ID}},
		{"promote unknown", func(i uint64) raftpb.Entry { return confEntry(t, i, raftpb.ConfChangeAddNode, m4, true) }, membership.ErrIDNotFound, []uint64{m1.ID}, []uint64{m2.ID}},
		{"promote m2", func(i uint64) raftpb.Entry { return confEntry(t, i, raftpb.ConfChangeAddNode, m2, true) }, nil, []uint64{m1.ID, m2.ID}, nil},
		{"update m2", func(i uint64) raftpb.Entry { return confEntry(t, i, raftpb.ConfChangeUpdateNode, moved, false) }, nil, []uint64{m1.ID, m2.ID}, nil},
		{"update unknown", func(i uint64) raftpb.Entry { return confEntry(t, i, raftpb.ConfChangeUpdateNode, m3, false) }, membership.ErrIDNotFound, []uint64{m1.ID, m2.ID}, nil},
		{"context for another ID", func(i uint64) raftpb.Entry {
			e := confEntry(t, i, raftpb.ConfChangeAddNode, notM1, false)
			var cc raftpb.ConfChange
			_ = cc.Unmarshal(e.Data)
			cc.NodeID = m4.ID
			e.Data, _ = cc.Marshal()
			return e
		}, membership.ErrBadContext, []uint64{m1.ID, m2.ID}, nil},
		{"malformed context", func(i uint64) raftpb.Entry { badCtx.Index = i; return badCtx }, membership.ErrBadContext, []uint64{m1.ID, m2.ID}, nil},
		{"remove m2", func(i uint64) raftpb.Entry { return confEntry(t, i, raftpb.ConfChangeRemoveNode, m2, false) }, nil, []uint64{m1.ID}, nil},
		{"remove m2 again", func(i uint64) raftpb.Entry { return confEntry(t, i, raftpb.ConfChangeRemoveNode, m2, false) }, membership.ErrIDRemoved, []uint64{m1.ID}, nil},
		{"re-add removed m2", func(i uint64) raftpb.Entry { return confEntry(t, i, raftpb.ConfChangeAddNode, m2, false) }, membership.ErrIDRemoved, []uint64{m1.ID}, nil},
		{"remove unknown", func(i uint64) raftpb.Entry { return confEntry(t, i, raftpb.ConfChangeRemoveNode, m3, false) }, membership.ErrIDNotFound, []uint64{m1.ID}, nil},
	}
	for i, st := range steps {
		idx := uint64(i + 1)
		ent := st.ent(idx)
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(ent.Data); err != nil {
			t.Fatal(err)
		}
		var gotRaft raftpb.ConfChange
		err := e.a.ConfChange(ent, cc, func(cc raftpb.ConfChange) *raftpb.ConfState {
			gotRaft = cc
			return e.toRaft(cc)
		})
		if !errIs(err, st.wantErr) {
			t.Fatalf("%s: err %v, want %v", st.name, err, st.wantErr)
		}
		if wantNoop := st.wantErr != nil; (gotRaft.NodeID == 0) != wantNoop {
			t.Fatalf("%s: raft got NodeID %x; a rejected change must reach raft as a no-op, a valid one as is", st.name, gotRaft.NodeID)
		}
		if e.a.ConsistentIndex() != idx {
			t.Fatalf("%s: consistent index %d, want %d", st.name, e.a.ConsistentIndex(), idx)
		}
		ms, removed, cs := e.persisted()
		if cs == nil || !sameIDs(cs.Voters, st.voters) || !sameIDs(cs.Learners, st.learners) {
			t.Fatalf("%s: persisted conf state %v, want voters %x learners %x", st.name, cs, st.voters, st.learners)
		}
		var memVoters, memLearners []uint64
		for _, m := range e.cl.Members() {
			if m.IsLearner {
				memLearners = append(memLearners, m.ID)
			} else {
				memVoters = append(memVoters, m.ID)
			}
			if p, ok := ms[m.ID]; !ok || p.IsLearner != m.IsLearner || !slices.Equal(p.PeerURLs, m.PeerURLs) {
				t.Fatalf("%s: member %x in memory %+v, persisted %+v", st.name, m.ID, m, p)
			}
		}
		if !sameIDs(memVoters, st.voters) || !sameIDs(memLearners, st.learners) || len(ms) != len(st.voters)+len(st.learners) {
			t.Fatalf("%s: members %x/%x, persisted %d", st.name, memVoters, memLearners, len(ms))
		}
		if st.name == "remove m2" && !removed[m2.ID] {
			t.Fatalf("removal of m2 not persisted")
		}
	}
	if m := e.cl.Member(m2.ID); m != nil {
		t.Fatalf("m2 still a member: %+v", m)
	}
}

func sameIDs(a, b []uint64) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestConfChangeReplayDoesNotPersist: below the consistent index a conf
// change updates the in-memory member set and raft, and nothing else.
func TestConfChangeReplayDoesNotPersist(t *testing.T) {
	dir := t.TempDir()
	e := openEnv(t, dir)
	m1, m2 := member("m1", "http://m1:2380"), member("m2", "http://m2:2380")
	e.feed(confEntry(t, 1, raftpb.ConfChangeAddNode, m1, false), normal(2, put("a", "1")))
	e.close()

	re := openEnv(t, dir)
	before := re.dump()
	raftCalls := 0
	// Index 2 is at the consistent index, but the change is new to this
	// member set: it must be replayed in memory only.
	add := confEntry(t, 2, raftpb.ConfChangeAddNode, m2, false)
	for _, ent := range []raftpb.Entry{confEntry(t, 1, raftpb.ConfChangeAddNode, m1, false), add} {
		var cc raftpb.ConfChange
		_ = cc.Unmarshal(ent.Data)
		if err := re.a.ConfChange(ent, cc, func(cc raftpb.ConfChange) *raftpb.ConfState { raftCalls++; return re.toRaft(cc) }); err != nil {
			t.Fatal(err)
		}
	}
	if raftCalls != 2 || len(re.cl.Members()) != 2 {
		t.Fatalf("raft calls %d, members %d; want 2, 2", raftCalls, len(re.cl.Members()))
	}
	if after := re.dump(); after != before {
		t.Fatalf("replay below the consistent index wrote to the backend:\n%s\nvs\n%s", after, before)
	}
	if re.a.ConsistentIndex() != 2 {
		t.Fatalf("consistent index %d", re.a.ConsistentIndex())
	}
}

// TestAlarms: GET/ACTIVATE/DEACTIVATE semantics, persistence across a
// restart, and NOSPACE refusing exactly the writes that can grow the store.
func TestAlarms(t *testing.T) {
	dir := t.TempDir()
	e := openEnv(t, dir)
	idx := uint64(0)
	next := func(req *pb.InternalRaftRequest) Result {
		idx++
		return e.feed(normal(idx, req))[idx]
	}
	alarm := func(act pb.AlarmRequest_AlarmAction, id uint64, typ pb.AlarmType) []*pb.AlarmMember {
		t.Helper()
		r := next(&pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: act, MemberID: id, Alarm: typ}})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r.Resp.(*pb.AlarmResponse).Alarms
	}
	if r := next(put("k", "v")); r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := alarm(pb.AlarmRequest_ACTIVATE, 1, pb.AlarmType_NOSPACE); len(got) != 1 {
		t.Fatalf("activate: %v", got)
	}
	if got := alarm(pb.AlarmRequest_ACTIVATE, 1, pb.AlarmType_NOSPACE); len(got) != 0 {
		t.Fatalf("activating twice reported %v", got)
	}
	if got := alarm(pb.AlarmRequest_ACTIVATE, 2, pb.AlarmType_CORRUPT); len(got) != 1 {
		t.Fatalf("activate corrupt: %v", got)
	}
	if got := alarm(pb.AlarmRequest_ACTIVATE, 2, pb.AlarmType_NONE); len(got) != 0 {
		t.Fatalf("activating NONE reported %v", got)
	}
	if got := alarm(pb.AlarmRequest_GET, 0, pb.AlarmType_NONE); len(got) != 2 {
		t.Fatalf("get all: %v", got)
	}
	if got := alarm(pb.AlarmRequest_GET, 0, pb.AlarmType_CORRUPT); len(got) != 1 || got[0].MemberID != 2 {
		t.Fatalf("get corrupt: %v", got)
	}
	// Under CORRUPT every request through the key space is refused (and
	// consumed), whatever NOSPACE says.
	corruptRev := e.kv.Rev()
	for _, tc := range []struct {
		name string
		req  *pb.InternalRaftRequest
	}{
		{"put", put("k", "w")},
		{"delete", del("k", "")},
		{"txn", txnPut("k", "w")},
		{"compaction", &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: corruptRev}}},
	} {
		if r := next(tc.req); !errors.Is(r.Err, ErrCorrupt) {
			t.Fatalf("%s under CORRUPT: %v", tc.name, r.Err)
		}
		if ci, _ := e.kv.ConsistentIndexTerm(); ci != idx {
			t.Fatalf("%s under CORRUPT: consistent index %d, want %d", tc.name, ci, idx)
		}
	}
	if e.kv.Rev() != corruptRev {
		t.Fatalf("revision moved under CORRUPT: %d, was %d", e.kv.Rev(), corruptRev)
	}
	if got := alarm(pb.AlarmRequest_DEACTIVATE, 2, pb.AlarmType_CORRUPT); len(got) != 1 {
		t.Fatalf("deactivate corrupt: %v", got)
	}

	nested := &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestTxn{
		RequestTxn: &pb.TxnRequest{Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("n")}}}}}}}}}}
	delTxn := &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("x")}}}}}}
	rev := e.kv.Rev()
	for _, tc := range []struct {
		name    string
		req     *pb.InternalRaftRequest
		refused bool
	}{
		{"put", put("k", "w"), true},
		{"txn with a put", txnPut("k", "w"), true},
		{"txn with a nested put in else", nested, true},
		{"lease grant", &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 1, TTL: 5}}, true},
		{"txn without puts", delTxn, false},
		{"delete", del("k", ""), false},
		{"compaction", &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: rev}}, false},
	} {
		r := next(tc.req)
		if refused := errors.Is(r.Err, ErrNoSpace); refused != tc.refused {
			t.Fatalf("%s under NOSPACE: err %v, refused %v, want %v", tc.name, r.Err, refused, tc.refused)
		}
		if ci, _ := e.kv.ConsistentIndexTerm(); ci != idx || e.a.ConsistentIndex() != idx {
			t.Fatalf("%s: consistent index %d/%d, want %d", tc.name, ci, e.a.ConsistentIndex(), idx)
		}
	}
	if e.kv.Rev() != rev+1 {
		t.Fatalf("revision %d, want %d (only the delete)", e.kv.Rev(), rev+1)
	}

	// Alarms survive a restart.
	e.close()
	e = openEnv(t, dir)
	idx = e.a.ConsistentIndex()
	if got := e.alarms.List(); len(got) != 1 || got[0].Alarm != pb.AlarmType_NOSPACE {
		t.Fatalf("after restart: %v", got)
	}
	if r := next(put("k", "w")); !errors.Is(r.Err, ErrNoSpace) {
		t.Fatalf("put after restart under NOSPACE: %v", r.Err)
	}
	if got := alarm(pb.AlarmRequest_DEACTIVATE, 1, pb.AlarmType_NOSPACE); len(got) != 1 {
		t.Fatalf("deactivate: %v", got)
	}
	if got := alarm(pb.AlarmRequest_DEACTIVATE, 1, pb.AlarmType_NOSPACE); len(got) != 0 {
		t.Fatalf("deactivating twice reported %v", got)
	}
	if r := next(put("k", "w")); r.Err != nil {
		t.Fatalf("put after deactivation: %v", r.Err)
	}
	e.close()
	e = openEnv(t, dir)
	if got := e.alarms.List(); len(got) != 0 {
		t.Fatalf("after second restart: %v", got)
	}
}
