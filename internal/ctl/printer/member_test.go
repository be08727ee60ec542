package printer

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The expected bytes are etcdctl 3.6.16's for the same responses.
func TestMemberAddSimple(t *testing.T) {
	hdr := &pb.ResponseHeader{ClusterId: 0xc8730d66636ff140, MemberId: 0x9e737febb6b99eee, RaftTerm: 2}
	self := &pb.Member{ID: 0x9e737febb6b99eee, Name: "default", PeerURLs: []string{"http://127.0.0.1:22380"}, ClientURLs: []string{"http://127.0.0.1:22379"}}
	for _, tc := range []struct {
		name string
		add  MemberAdd
		want string
	}{
		{"learner, short ID, sorted before the others", MemberAdd{Name: "x", PeerURLs: "http://127.0.0.1:23999", Resp: clientv3.MemberAddResponse{
			Header:  hdr,
			Member:  &pb.Member{ID: 0xaa74cc02f867e68, PeerURLs: []string{"http://127.0.0.1:23999"}, IsLearner: true},
			Members: []*pb.Member{{ID: 0xaa74cc02f867e68, PeerURLs: []string{"http://127.0.0.1:23999"}, IsLearner: true}, self},
		}}, "Member  aa74cc02f867e68 added as learner to cluster c8730d66636ff140\n\n" +
			"ETCD_NAME=\"x\"\n" +
			"ETCD_INITIAL_CLUSTER=\"x=http://127.0.0.1:23999,default=http://127.0.0.1:22380\"\n" +
			"ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://127.0.0.1:23999\"\n" +
			"ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n"},
		// A voter whose --peer-urls had a leading space (the server trims
		// it; the ADVERTISE line keeps it), next to an unstarted learner.
		{"voter, another member unstarted", MemberAdd{Name: "a", PeerURLs: " http://127.0.0.1:4000", Resp: clientv3.MemberAddResponse{
			Header: hdr,
			Member: &pb.Member{ID: 0xb685f2ddbf5d7289, PeerURLs: []string{"http://127.0.0.1:4000"}},
			Members: []*pb.Member{self, {ID: 0xb685f2ddbf5d7289, PeerURLs: []string{"http://127.0.0.1:4000"}},
				{ID: 0xdefe6f1d8c71a6a4, PeerURLs: []string{"http://127.0.0.1:24305"}, IsLearner: true}},
		}}, "Member b685f2ddbf5d7289 added to cluster c8730d66636ff140\n\n" +
			"ETCD_NAME=\"a\"\n" +
			"ETCD_INITIAL_CLUSTER=\"default=http://127.0.0.1:22380,a=http://127.0.0.1:4000,=http://127.0.0.1:24305\"\n" +
			"ETCD_INITIAL_ADVERTISE_PEER_URLS=\" http://127.0.0.1:4000\"\n" +
			"ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n"},
	} {
		p, out, _ := newTest("simple", false)
		if err := p.MemberAdd(tc.add); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, out.String(), tc.want)
		}
	}
}

func TestMemberChangeFormats(t *testing.T) {
	hdr := &pb.ResponseHeader{ClusterId: 0xc8730d66636ff140, MemberId: 0x9e737febb6b99eee, RaftTerm: 2}
	ms := []*pb.Member{{ID: 0x9e737febb6b99eee, Name: "default", PeerURLs: []string{"http://127.0.0.1:22380"}, ClientURLs: []string{"http://127.0.0.1:22379"}}}
	const id = 0xaa74cc02f867e68
	p, out, _ := newTest("simple", true)
	p.MemberRemove(id, clientv3.MemberRemoveResponse{Header: hdr, Members: ms})
	p.MemberUpdate(id, clientv3.MemberUpdateResponse{Header: hdr, Members: ms})
	p.MemberPromote(id, clientv3.MemberPromoteResponse{Header: hdr, Members: ms})
	want := "Member  aa74cc02f867e68 removed from cluster c8730d66636ff140\n" +
		"Member  aa74cc02f867e68 updated in cluster c8730d66636ff140\n" +
		"Member  aa74cc02f867e68 promoted in cluster c8730d66636ff140\n"
	if out.String() != want {
		t.Errorf("simple:\n got %q\nwant %q", out.String(), want)
	}
	// json ignores --hex for member changes.
	p, out, _ = newTest("json", true)
	p.MemberRemove(id, clientv3.MemberRemoveResponse{Header: hdr, Members: ms})
	want = `{"header":{"cluster_id":14443903163313418560,"member_id":11417610130673999598,"raft_term":2},"members":[{"ID":11417610130673999598,"name":"default","peerURLs":["http://127.0.0.1:22380"],"clientURLs":["http://127.0.0.1:22379"]}]}` + "\n"
	if out.String() != want {
		t.Errorf("json:\n got %q\nwant %q", out.String(), want)
	}
	for _, f := range []string{"fields", "table"} {
		p, _, _ := newTest(f, false)
		var ue *UnsupportedError
		for _, err := range []error{
			p.MemberAdd(MemberAdd{}), p.MemberRemove(id, clientv3.MemberRemoveResponse{}),
			p.MemberUpdate(id, clientv3.MemberUpdateResponse{}), p.MemberPromote(id, clientv3.MemberPromoteResponse{}),
		} {
			if !errors.As(err, &ue) || err.Error() != f+" not supported as output format" {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
}
