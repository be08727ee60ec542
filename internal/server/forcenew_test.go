package server

import (
	"reflect"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/wal"
)

func ccEntry(t *testing.T, index uint64, typ raftpb.ConfChangeType, id uint64) raftpb.Entry {
	t.Helper()
	b, err := (&raftpb.ConfChange{Type: typ, NodeID: id}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raftpb.Entry{Type: raftpb.EntryConfChange, Term: 1, Index: index, Data: b}
}

func TestConfIDs(t *testing.T) {
	ents := []raftpb.Entry{
		ccEntry(t, 4, raftpb.ConfChangeAddNode, 9),
		{Type: raftpb.EntryNormal, Term: 1, Index: 5},
		ccEntry(t, 6, raftpb.ConfChangeRemoveNode, 2),
		ccEntry(t, 7, raftpb.ConfChangeAddLearnerNode, 5),
		ccEntry(t, 8, raftpb.ConfChangeUpdateNode, 3),
	}
	got := confIDs(raftpb.ConfState{Voters: []uint64{3, 1, 2}}, ents)
	if want := []uint64{1, 3, 5, 9}; !reflect.DeepEqual(got, want) {
		t.Fatalf("confIDs = %v, want %v", got, want)
	}
}

// The uncommitted tail is dropped (unless the backend already applied it),
// self stays, every other member is removed by committed conf changes.
func TestForceNewClusterRewritesTail(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ci        uint64
		wantKept  uint64 // last index kept from the old log
		selfInLog bool
	}{
		{"commit index wins", 2, 4, true},
		{"consistent index past commit", 5, 5, true},
		{"self missing from the configuration", 0, 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir() + "/wal"
			w, err := wal.Create(zap.NewNop(), dir, []byte("md"), wal.Options{NoFsync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			self := uint64(1)
			voters := []uint64{1, 2, 3}
			if !tc.selfInLog {
				voters = []uint64{2, 3}
			}
			ents := []raftpb.Entry{{Term: 2, Index: 3}, {Term: 2, Index: 4}, {Term: 2, Index: 5}, {Term: 2, Index: 6}}
			st := raftpb.HardState{Term: 2, Vote: 2, Commit: 4}
			gotSt, got, err := forceNewCluster(zap.NewNop(), w, st, ents, raftpb.ConfState{Voters: voters}, 2, tc.ci, self, 7)
			if err != nil {
				t.Fatal(err)
			}
			var kept, added []raftpb.Entry
			for _, e := range got {
				if e.Type == raftpb.EntryConfChange {
					added = append(added, e)
				} else {
					kept = append(kept, e)
				}
			}
			if kept[len(kept)-1].Index != tc.wantKept {
				t.Fatalf("kept up to %d, want %d", kept[len(kept)-1].Index, tc.wantKept)
			}
			wantAdded := 2
			if !tc.selfInLog {
				wantAdded = 3
			}
			if len(added) != wantAdded || gotSt.Commit != added[len(added)-1].Index || added[0].Index != tc.wantKept+1 {
				t.Fatalf("added %d conf changes, commit %d: %+v", len(added), gotSt.Commit, added)
			}
			var first raftpb.ConfChange
			if err := first.Unmarshal(added[0].Data); err != nil {
				t.Fatal(err)
			}
			if !tc.selfInLog && (first.Type != raftpb.ConfChangeAddNode || first.NodeID != self) {
				t.Fatalf("first conf change %+v, want AddNode(self)", first)
			}
			for _, e := range added[wantAdded-2:] {
				var cc raftpb.ConfChange
				if err := cc.Unmarshal(e.Data); err != nil || cc.Type != raftpb.ConfChangeRemoveNode || cc.NodeID == self {
					t.Fatalf("expected removal of another member, got %+v (%v)", cc, err)
				}
			}
		})
	}
}
