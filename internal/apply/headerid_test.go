package apply

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
)

func TestHeaderID(t *testing.T) {
	tests := []struct {
		name string
		req  *pb.InternalRaftRequest
		want uint64
		ok   bool
	}{
		{"put after header field order", &pb.InternalRaftRequest{Header: &pb.RequestHeader{ID: 0x390d000000000042, Username: "u"},
			Put: &pb.PutRequest{Key: []byte("k"), Value: make([]byte, 300)}}, 0x390d000000000042, true},
		{"txn", &pb.InternalRaftRequest{Header: &pb.RequestHeader{ID: 7}, Txn: &pb.TxnRequest{}}, 7, true},
		{"member attributes", &pb.InternalRaftRequest{Header: &pb.RequestHeader{ID: 1 << 60},
			ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{Member_ID: 3}}, 1 << 60, true},
		{"no header", &pb.InternalRaftRequest{ID: 9, Put: &pb.PutRequest{Key: []byte("k")}}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.req.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, ok := headerID(b)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("headerID = %x, %v; want %x, %v", got, ok, tt.want, tt.ok)
			}
			// Truncated input never panics and never yields a wrong ID.
			for i := range b {
				if id, ok := headerID(b[:i]); ok && id != tt.want {
					t.Fatalf("truncated at %d: id %x", i, id)
				}
			}
		})
	}
}
