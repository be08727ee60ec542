package txn

import (
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// BenchmarkPut is the apply-side cost of one Put (no fsync wait: commits
// are batched in the background).
func BenchmarkPut(b *testing.B) {
	e, _ := newExec(b, nil)
	reqs := make([]*pb.PutRequest, 1000)
	for i := range reqs {
		reqs[i] = &pb.PutRequest{Key: []byte(fmt.Sprintf("key-%06d", i)), Value: make([]byte, 256)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.Put(reqs[i%len(reqs)], ConsistentIndex{Index: uint64(i + 1), Term: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRange(b *testing.B) {
	e, _ := newExec(b, nil)
	for i := 0; i < 1000; i++ {
		e.Put(&pb.PutRequest{Key: []byte(fmt.Sprintf("key-%06d", i)), Value: make([]byte, 256)}, ConsistentIndex{})
	}
	req := &pb.RangeRequest{Key: []byte("key-000500")}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Range(req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
