package printer

import (
	"bytes"
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newTest(format string, hex bool) (Printer, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return New(format, hex, &out, &errb), &out, &errb
}

var getResp = clientv3.GetResponse{
	Header: &pb.ResponseHeader{ClusterId: 0xabc, MemberId: 0x1f, Revision: 5, RaftTerm: 2},
	Kvs:    []*mvccpb.KeyValue{{Key: []byte("k"), Value: []byte("v\x00"), CreateRevision: 3, ModRevision: 5, Version: 2, Lease: 0x10}},
	Count:  1,
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		format string
		hex    bool
		want   string
	}{
		{"simple", false, "k\nv\x00\n"},
		{"simple", true, `\x6b` + "\n" + `\x76\x00` + "\n"},
		{"json", false, `{"header":{"cluster_id":2748,"member_id":31,"revision":5,"raft_term":2},"kvs":[{"key":"aw==","create_revision":3,"mod_revision":5,"version":2,"value":"dgA=","lease":16}],"count":1}` + "\n"},
		{"fields", true, "\"ClusterID\" : abc\n\"MemberID\" : 1f\n\"Revision\" : 5\n\"RaftTerm\" : 2\n\"Key\" : \"k\"\n" +
			"\"CreateRevision\" : 3\n\"ModRevision\" : 5\n\"Version\" : 2\n\"Value\" : \"v\\x00\"\n\"Lease\" : 0000000000000010\n" +
			"\"More\" : false\n\"Count\" : 1\n"},
	} {
		p, out, _ := newTest(tc.format, tc.hex)
		if err := p.Get(getResp); err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		if out.String() != tc.want {
			t.Errorf("%s hex=%v:\n got %q\nwant %q", tc.format, tc.hex, out.String(), tc.want)
		}
	}
	p, _, _ := newTest("table", false)
	var ue *UnsupportedError
	if err := p.Get(getResp); !errors.As(err, &ue) || err.Error() != "table not supported as output format" {
		t.Errorf("table get: %v", err)
	}
	if New("yaml", false, nil, nil) != nil {
		t.Error("unknown format must give no printer")
	}
}

func TestSimpleValueOnlyAndTxn(t *testing.T) {
	p, out, _ := newTest("simple", false)
	p.(*Simple).ValueOnly = true
	_ = p.Get(getResp)
	if out.String() != "v\x00\n" {
		t.Errorf("value only: %q", out.String())
	}
	p, out, _ = newTest("simple", false)
	_ = p.Txn(clientv3.TxnResponse{Succeeded: false, Responses: []*pb.ResponseOp{
		{Response: &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{}}},
		{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: &pb.DeleteRangeResponse{Deleted: 2}}},
	}})
	if out.String() != "FAILURE\n\nOK\n\n2\n" {
		t.Errorf("txn: %q", out.String())
	}
}

func TestHealthSimpleSplitsStreams(t *testing.T) {
	p, out, errb := newTest("simple", false)
	_ = p.EndpointHealth([]EndpointHealth{{Ep: "a", Health: true, Took: "1ms"}, {Ep: "b", Took: "5s", Error: "boom"}})
	if out.String() != "a is healthy: successfully committed proposal: took = 1ms\n" ||
		errb.String() != "b is unhealthy: failed to commit proposal: boom\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errb.String())
	}
}

func TestRenderTable(t *testing.T) {
	var b bytes.Buffer
	renderTable(&b, []string{"endpoint", "hash_x"}, [][]string{{"127.0.0.1:2379", "7"}})
	want := "+----------------+--------+\n" +
		"|    ENDPOINT    | HASH X |\n" +
		"+----------------+--------+\n" +
		"| 127.0.0.1:2379 |      7 |\n" +
		"+----------------+--------+\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 9: "9 B", 10: "10 B", 999: "999 B", 1000: "1.0 kB", 20480: "20 kB",
		16384: "16 kB", 2147483648: "2.1 GB", 1 << 20: "1.0 MB", 123456789: "124 MB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestOperatorPrinters(t *testing.T) {
	ml := clientv3.MemberListResponse{
		Header:  &pb.ResponseHeader{ClusterId: 0xabc, MemberId: 0x1f, RaftTerm: 2},
		Members: []*pb.Member{{ID: 0x1f, Name: "n1", PeerURLs: []string{"http://p:1"}, ClientURLs: []string{"http://c:1", "http://c:2"}}, {ID: 0x2, PeerURLs: []string{"http://p:2"}, IsLearner: true}},
	}
	for _, tc := range []struct {
		format string
		hex    bool
		want   string
	}{
		{"simple", false, "1f, started, n1, http://p:1, http://c:1,http://c:2, false\n2, unstarted, , http://p:2, , true\n"},
		{"json", true, `{"header":{"cluster_id":"abc","member_id":"1f","raft_term":2},"members":[{"ID":"1f","name":"n1","peerURLs":["http://p:1"],"clientURLs":["http://c:1","http://c:2"]},{"ID":"2","peerURLs":["http://p:2"],"isLearner":true}]}` + "\n"},
		{"fields", true, "\"ClusterID\" : abc\n\"MemberID\" : 1f\n\"RaftTerm\" : 2\n\"ID\" : 1f\n\"Name\" : \"n1\"\n\"PeerURL\" : \"http://p:1\"\n" +
			"\"ClientURL\" : \"http://c:1\"\n\"ClientURL\" : \"http://c:2\"\n\"IsLearner\" : false\n\n\"ID\" : 2\n\"Name\" : \"\"\n\"PeerURL\" : \"http://p:2\"\n\"IsLearner\" : true\n\n"},
	} {
		p, out, _ := newTest(tc.format, tc.hex)
		if err := p.MemberList(ml); err != nil || out.String() != tc.want {
			t.Errorf("%s: err %v\n got %q\nwant %q", tc.format, err, out.String(), tc.want)
		}
	}
	al := clientv3.AlarmResponse{Alarms: []*pb.AlarmMember{{MemberID: 7, Alarm: pb.AlarmType_NOSPACE}}}
	p, out, _ := newTest("simple", false)
	if _ = p.Alarm(al); out.String() != "memberID:7 alarm:NOSPACE \n" {
		t.Errorf("alarm simple %q", out.String())
	}
	p, out, _ = newTest("fields", false)
	_ = p.DBStatus(DBStatus{Hash: 1, Revision: 2, TotalKey: 3, TotalSize: 4, Version: "3.6.0"})
	if out.String() != "\"Hash\" : 1\n\"Revision\" : 2\n\"Keys\" : 3\n\"Size\" : 4\n\"Version\" : 3.6.0\n" {
		t.Errorf("db status fields %q", out.String())
	}
	p, out, _ = newTest("simple", false)
	_ = p.DBHashKV(DBHashKV{Hash: 9, HashRevision: 8, CompactRevision: -1})
	if out.String() != "9, 8, -1\n" {
		t.Errorf("hashkv simple %q", out.String())
	}
}
