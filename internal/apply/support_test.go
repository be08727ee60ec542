package apply

import (
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/internal/membership"
)

func v2Entry(t *testing.T, index uint64, r *pb.Request) raftpb.Entry {
	t.Helper()
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raftpb.Entry{Index: index, Term: 2, Data: b}
}

func TestCheckNamesWhatCairnCannotApply(t *testing.T) {
	tests := []struct {
		name string
		ent  raftpb.Entry
		kind string // "" when supported
	}{
		{"empty", raftpb.Entry{Index: 1}, ""},
		{"conf change", raftpb.Entry{Index: 1, Type: raftpb.EntryConfChange, Data: []byte{1}}, ""},
		{"put", normal(1, put("a", "1")), ""},
		{"txn", normal(1, txnPut("a", "1")), ""},
		{"delete", normal(1, del("a", "b")), ""},
		{"compaction", normal(1, &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: 1}}), ""},
		{"alarm", normal(1, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{}}), ""},
		{"lease grant", normal(9, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{TTL: 5}}), ""},
		{"lease revoke", normal(9, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 5}}), ""},
		{"lease checkpoint", normal(9, &pb.InternalRaftRequest{LeaseCheckpoint: &pb.LeaseCheckpointRequest{}}), ""},
		{"auth enable", normal(9, &pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}), "auth enable"},
		{"auth user add", normal(9, &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "u"}}), "auth user add"},
		{"authenticate", normal(9, &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{Name: "u"}}), "authenticate"},
		{"downgrade", normal(9, &pb.InternalRaftRequest{DowngradeInfoSet: &membershippb.DowngradeInfoSetRequest{Enabled: true}}), "downgrade info set"},
		{"nothing set", normal(9, &pb.InternalRaftRequest{}), "empty"},
		{"undecodable", raftpb.Entry{Index: 9, Data: []byte{0xff, 0xff, 0xff}}, "undecodable"},
		{"v2 member attributes", v2Entry(t, 9, &pb.Request{ID: 7, Method: "PUT", Path: "/0/members/8e9e05c52164694d/attributes", Val: `{"name":"x"}`}), ""},
		{"v2 cluster version", v2Entry(t, 9, &pb.Request{ID: 7, Method: "PUT", Path: "/0/version", Val: "3.5.0"}), ""},
		{"v2 key write", v2Entry(t, 9, &pb.Request{ID: 7, Method: "PUT", Path: "/1/foo", Val: "bar"}), "v2 PUT /1/foo"},
		{"v2 member delete", v2Entry(t, 9, &pb.Request{ID: 7, Method: "DELETE", Path: "/0/members/8e9e05c52164694d/attributes"}), "v2 DELETE /0/members/8e9e05c52164694d/attributes"},
		{"v2 bad attributes", v2Entry(t, 9, &pb.Request{ID: 7, Method: "PUT", Path: "/0/members/1/attributes", Val: `{`}), "v2 PUT /0/members/1/attributes with malformed attributes"},
		{"v2 inside v3", normal(9, &pb.InternalRaftRequest{V2: &pb.Request{Method: "QGET", Path: "/1/foo"}}), "v2 QGET /1/foo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.ent)
			if tt.kind == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			var ue *UnsupportedError
			if !errors.As(err, &ue) || !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Check = %v, want an UnsupportedError", err)
			}
			if ue.Kind != tt.kind || ue.Index != tt.ent.Index {
				t.Fatalf("Check = %+v, want kind %q at %d", ue, tt.kind, tt.ent.Index)
			}
			want := fmt.Sprintf("raft entry %d holds a %s request, which cairn cannot apply yet", tt.ent.Index, tt.kind)
			if err.Error() != want {
				t.Fatalf("text %q, want %q", err, want)
			}
		})
	}
}

// TestLegacyV2MembershipApplies checks the two v2 writes etcd 3.6 still
// applies from an old log take effect in cairn too.
func TestLegacyV2MembershipApplies(t *testing.T) {
	e := openEnv(t, t.TempDir())
	m := member("m1", "http://m1:2380")
	e.feed(confEntry(t, 1, raftpb.ConfChangeAddNode, m, false))
	attrs := `{"name":"infra1","clientURLs":["http://10.0.0.1:2379"]}`
	path := "/0/members/" + membership.FormatID(m.ID) + "/attributes"
	ents := []raftpb.Entry{
		v2Entry(t, 2, &pb.Request{ID: 71, Method: "PUT", Path: path, Val: attrs}),
		v2Entry(t, 3, &pb.Request{ID: 72, Method: "PUT", Path: "/0/version", Val: "3.5.0"}),
	}
	for _, ent := range ents {
		if id, r := e.a.Normal(ent); r.Err != nil || id == 0 {
			t.Fatalf("entry %d: id %d, %v", ent.Index, id, r.Err)
		}
	}
	got := e.cl.Member(m.ID)
	if got == nil || got.Name != "infra1" || len(got.ClientURLs) != 1 || got.ClientURLs[0] != "http://10.0.0.1:2379" {
		t.Fatalf("member after v2 attributes: %+v", got)
	}
	if v := e.cl.Version(); v != "3.5.0" {
		t.Fatalf("cluster version %q", v)
	}
	if ci := e.a.ConsistentIndex(); ci != 3 {
		t.Fatalf("consistent index %d", ci)
	}
}
