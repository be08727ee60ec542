package watch

import (
	"bytes"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// An encoded response is byte for byte the gogo encoding of the same
// pb.WatchResponse, whatever the head's fields and the events.
func TestEncodedResponseBytes(t *testing.T) {
	kv := func(k, v string, c, m, ver, lease int64) *mvccpb.KeyValue {
		return &mvccpb.KeyValue{Key: []byte(k), Value: []byte(v), CreateRevision: c, ModRevision: m, Version: ver, Lease: lease}
	}
	big := bytes.Repeat([]byte("v"), 300) // a length that takes a two-byte varint
	cases := []struct {
		name string
		head pb.WatchResponse
		evs  []*mvccpb.Event
	}{
		{"no events", pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 5}, WatchId: 3}, nil},
		{"one put", pb.WatchResponse{Header: &pb.ResponseHeader{ClusterId: 1, MemberId: 2, Revision: 9, RaftTerm: 4}, WatchId: 0},
			[]*mvccpb.Event{{Type: mvccpb.PUT, Kv: kv("a", "1", 9, 9, 1, 0)}}},
		{"put, delete and prev_kv", pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 12}, WatchId: 1 << 40},
			[]*mvccpb.Event{
				{Type: mvccpb.PUT, Kv: kv("k", string(big), 3, 12, 4, 77), PrevKv: kv("k", "old", 3, 11, 3, 77)},
				{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: []byte("k2"), ModRevision: 12}},
			}},
		{"no header", pb.WatchResponse{WatchId: 7},
			[]*mvccpb.Event{{Type: mvccpb.PUT, Kv: kv("x", "", 2, 2, 1, 0)}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := c.head
			want.Events = c.evs
			wantBytes, err := want.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			head := c.head
			er := &EncodedResponse{Head: &head}
			for _, ev := range c.evs {
				b := encodeEvent(ev)
				er.Events = append(er.Events, b)
				er.eventBytes += len(b)
			}
			if er.Size() != len(wantBytes) {
				t.Fatalf("Size %d, want %d", er.Size(), len(wantBytes))
			}
			// gogo's contract: the message is written at the end of a
			// larger buffer.
			buf := make([]byte, er.Size()+10)
			n, err := er.MarshalToSizedBuffer(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got := buf[len(buf)-n:]; !bytes.Equal(got, wantBytes) {
				t.Fatalf("bytes differ:\n got %x\nwant %x", got, wantBytes)
			}
			dec, err := er.Decode()
			if err != nil {
				t.Fatal(err)
			}
			if dec.String() != want.String() {
				t.Fatalf("decoded %v, want %v", dec, &want)
			}
		})
	}
}
