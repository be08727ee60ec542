package membership

import (
	"os"
	"reflect"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func TestV2SnapshotRoundTrip(t *testing.T) {
	c := NewCluster(1, 0x8e9e05c52164694d, 1)
	m := NewMember("n1", []string{"http://127.0.0.1:2380"}, "tok", nil)
	ctx, err := MarshalContext(m, false)
	if err != nil {
		t.Fatal(err)
	}
	cc := raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: m.ID, Context: ctx}
	if err := c.ValidateConfChange(cc); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyConfChange(cc, nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.SetAttributes(m.ID, Attributes{Name: "n1", ClientURLs: []string{"http://127.0.0.1:2379"}}, nil); !ok || err != nil {
		t.Fatalf("set attributes: %v %v", ok, err)
	}
	c.removed[42] = true
	if err := c.SetVersion("3.6.0", nil); err != nil {
		t.Fatal(err)
	}
	b, err := c.MarshalV2Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	members, removed, version, err := UnmarshalV2Snapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(members, c.Members()) || !reflect.DeepEqual(removed, []uint64{42}) || version != "3.6.0" {
		t.Fatalf("round trip: %+v %v %q", members, removed, version)
	}
}

// The document etcd 3.6.16 wrote into a .snap file of a one-member cluster.
func TestUnmarshalEtcdV2Snapshot(t *testing.T) {
	b, err := os.ReadFile("testdata/etcd-3.6.16-v2store.json")
	if err != nil {
		t.Fatal(err)
	}
	members, removed, version, err := UnmarshalV2Snapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []*Member{{ID: 0x8ddab73534be950c,
		RaftAttributes: RaftAttributes{PeerURLs: []string{"http://127.0.0.1:31380"}},
		Attributes:     Attributes{Name: "n1", ClientURLs: []string{"http://127.0.0.1:31379"}}}}
	if !reflect.DeepEqual(members, want) || len(removed) != 0 || version != "3.6.0" {
		t.Fatalf("got %+v %v %q", members, removed, version)
	}
}
