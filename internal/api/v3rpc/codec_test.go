package v3rpc

import (
	"bytes"
	"testing"

	"github.com/golang/protobuf/proto" //nolint:staticcheck // etcd's API types are gogo (protobuf v1) messages
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
)

// The codec's bytes are what gRPC's default codec writes, and it decodes
// what the default codec encodes, for small and pooled (large) messages.
func TestCodecMatchesDefault(t *testing.T) {
	c := newCodec()
	big := bytes.Repeat([]byte("v"), 64<<10) // above gRPC's pooling threshold
	for _, tc := range []struct {
		name string
		msg  proto.Message
		into func() proto.Message
	}{
		{"put", &pb.PutRequest{Key: []byte("k"), Value: []byte("v"), PrevKv: true, Lease: 7}, func() proto.Message { return &pb.PutRequest{} }},
		{"large put", &pb.PutRequest{Key: []byte("k"), Value: big}, func() proto.Message { return &pb.PutRequest{} }},
		{"range response", &pb.RangeResponse{
			Header: &pb.ResponseHeader{ClusterId: 1, MemberId: 2, Revision: 3, RaftTerm: 4},
			Kvs:    []*mvccpb.KeyValue{{Key: []byte("a"), Value: big, CreateRevision: 2, ModRevision: 3, Version: 1}},
			More:   true, Count: 9,
		}, func() proto.Message { return &pb.RangeResponse{} }},
		{"empty", &pb.StatusRequest{}, func() proto.Message { return &pb.StatusRequest{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Marshal(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Free()
			want, err := c.fallback.Marshal(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			defer want.Free()
			if !bytes.Equal(got.Materialize(), want.Materialize()) {
				t.Fatal("encoding differs from gRPC's default codec")
			}
			back := tc.into()
			if err := c.Unmarshal(want, back); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(back, tc.msg) {
				t.Fatalf("decoded %v, want %v", back, tc.msg)
			}
		})
	}
}

// A decoded message keeps no reference to the receive buffer, which gRPC
// reuses once Unmarshal returns.
func TestCodecUnmarshalCopies(t *testing.T) {
	c := newCodec()
	in := &pb.PutRequest{Key: []byte("key"), Value: []byte("value")}
	raw, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out := &pb.PutRequest{}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(raw)}, out); err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		raw[i] = 0xff
	}
	if string(out.Key) != "key" || string(out.Value) != "value" {
		t.Fatalf("decoded message changed with its buffer: %q=%q", out.Key, out.Value)
	}
}

// Messages that are not etcd's (the health service) go to the default codec.
func TestCodecFallsBack(t *testing.T) {
	c := newCodec()
	in := &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}
	data, err := c.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := &healthpb.HealthCheckResponse{}
	if err := c.Unmarshal(data, out); err != nil {
		t.Fatal(err)
	}
	if out.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("status %v", out.Status)
	}
}

func TestCodecRefusesGarbage(t *testing.T) {
	c := newCodec()
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 0xff})}, &pb.PutRequest{}); err == nil {
		t.Fatal("a truncated message decoded without error")
	}
}

// Pooled buffers are not cleared: a message marshalled into a buffer that
// held another one is still exactly the default codec's bytes.
func TestCodecReusesDirtyBuffers(t *testing.T) {
	c := newCodec()
	first := &pb.RangeResponse{Kvs: []*mvccpb.KeyValue{{Key: []byte("a"), Value: bytes.Repeat([]byte{0xff}, 3000)}}}
	second := &pb.PutRequest{Key: []byte("k"), Value: bytes.Repeat([]byte("v"), 2500)} // same 4 KiB tier
	// sync.Pool may drop a buffer: try a few times.
	for i := 0; i < 20; i++ {
		b, err := c.Marshal(first)
		if err != nil {
			t.Fatal(err)
		}
		b.Free()
		got, err := c.Marshal(second)
		if err != nil {
			t.Fatal(err)
		}
		want, err := c.fallback.Marshal(second)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Materialize(), want.Materialize()) {
			t.Fatalf("round %d: bytes differ from the default codec's", i)
		}
		got.Free()
		want.Free()
	}
}

func TestDirtyTier(t *testing.T) {
	for _, tc := range []struct{ size, tier int }{
		{1, 0}, {1024, 0}, {1025, 1}, {2048, 1}, {2049, 2}, {4 << 20, 12}, {4<<20 + 1, -1},
	} {
		if got := dirtyTier(tc.size); got != tc.tier {
			t.Errorf("dirtyTier(%d) = %d, want %d", tc.size, got, tc.tier)
		}
	}
	p := newDirtyPool()
	for _, size := range []int{1500, 4 << 20, 5 << 20} {
		b := p.Get(size)
		if len(*b) != size || cap(*b) < size {
			t.Fatalf("Get(%d): len %d cap %d", size, len(*b), cap(*b))
		}
		p.Put(b)
	}
}
