package printer

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The expected texts are etcdctl 3.6.16's for the same responses.
func TestLeasePrinters(t *testing.T) {
	hdr := &pb.ResponseHeader{ClusterId: 0xabc, MemberId: 0x1f, Revision: 3, RaftTerm: 2}
	grant := clientv3.LeaseGrantResponse{ResponseHeader: hdr, ID: 0x390da244671b6f03, TTL: 2}
	ttl := clientv3.LeaseTimeToLiveResponse{ResponseHeader: hdr, ID: 0x1234, TTL: 599, GrantedTTL: 600, Keys: [][]byte{[]byte("lk1"), []byte("l k2")}}
	gone := clientv3.LeaseTimeToLiveResponse{ResponseHeader: hdr, ID: 0x1234, TTL: -1}
	list := clientv3.LeaseLeasesResponse{ResponseHeader: hdr, Leases: []clientv3.LeaseStatus{{ID: 0x1234}, {ID: 5}}}
	ka := clientv3.LeaseKeepAliveResponse{ResponseHeader: hdr, ID: 0x1234, TTL: 600}
	revoke := clientv3.LeaseRevokeResponse{Header: hdr}

	p, out, _ := newTest("simple", false)
	_ = p.LeaseGrant(grant)
	_ = p.LeaseRevoke(0x1234, revoke)
	_ = p.LeaseKeepAlive(ka)
	_ = p.LeaseTimeToLive(ttl, true)
	_ = p.LeaseTimeToLive(ttl, false)
	_ = p.LeaseTimeToLive(gone, true)
	_ = p.LeaseList(list)
	want := "lease 390da244671b6f03 granted with TTL(2s)\nlease 0000000000001234 revoked\nlease 0000000000001234 keepalived with TTL(600)\n" +
		"lease 0000000000001234 granted with TTL(600s), remaining(599s), attached keys([lk1 l k2])\n" +
		"lease 0000000000001234 granted with TTL(600s), remaining(599s)\nlease 0000000000001234 already expired\n" +
		"found 2 leases\n0000000000001234\n0000000000000005\n"
	if out.String() != want {
		t.Errorf("simple:\n got %q\nwant %q", out.String(), want)
	}

	p, out, _ = newTest("json", false)
	_ = p.LeaseGrant(grant)
	_ = p.LeaseRevoke(0x1234, revoke)
	_ = p.LeaseTimeToLive(gone, false)
	_ = p.LeaseList(list)
	want = `{"cluster_id":2748,"member_id":31,"revision":3,"raft_term":2,"ID":4111120449530457859,"TTL":2,"Error":""}` + "\n" +
		`{"header":{"cluster_id":2748,"member_id":31,"revision":3,"raft_term":2}}` + "\n" +
		`{"cluster_id":2748,"member_id":31,"revision":3,"raft_term":2,"id":4660,"ttl":-1,"granted-ttl":0,"keys":null}` + "\n" +
		`{"cluster_id":2748,"member_id":31,"revision":3,"raft_term":2,"leases":[{"id":4660},{"id":5}]}` + "\n"
	if out.String() != want {
		t.Errorf("json:\n got %s\nwant %s", out.String(), want)
	}

	p, out, _ = newTest("fields", false)
	_ = p.LeaseTimeToLive(ttl, true)
	want = "\"ClusterID\" : 2748\n\"MemberID\" : 31\n\"Revision\" : 3\n\"RaftTerm\" : 2\n\"ID\" : 4660\n\"TTL\" : 599\n\"GrantedTTL\" : 600\n\"Key\" : \"lk1\"\n\"Key\" : \"l k2\"\n"
	if out.String() != want {
		t.Errorf("fields:\n got %q\nwant %q", out.String(), want)
	}

	p, _, _ = newTest("protobuf", false)
	err := p.LeaseRevoke(0x1234, revoke)
	if err == nil || err.Error() != "marshal unsupported for type clientv3.LeaseRevokeResponse ({cluster_id:2748 member_id:31 revision:3 raft_term:2  {} [] 0})" {
		t.Errorf("protobuf revoke: %v", err)
	}
	p, _, _ = newTest("table", false)
	if err := p.LeaseList(list); err == nil || err.Error() != "table not supported as output format" {
		t.Errorf("table: %v", err)
	}
}
