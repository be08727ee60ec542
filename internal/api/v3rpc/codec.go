package v3rpc

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	// Registers the default "proto" codec used for everything else.
	_ "google.golang.org/grpc/encoding/proto"
)

// gogoMarshaler is what etcd's generated API types (gogo/protobuf with
// marshaler and sizer plugins) implement, and the watch hub's encoded
// responses (watch.EncodedResponse: events encoded once, shared by every
// watcher's response) too.
type gogoMarshaler interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

// gogoUnmarshaler is the generated types' unmarshaler.
type gogoUnmarshaler interface {
	Unmarshal([]byte) error
}

// codec is gRPC's "proto" codec for etcd's API types: it calls their
// generated Size, MarshalToSizedBuffer and Unmarshal directly. gRPC's
// default codec reaches them through the protobuf runtime's reflection
// wrapper for legacy messages, which cost about a tenth of the server's CPU
// per request (a profile of 1000 concurrent puts). The bytes on the wire are
// the same. Other messages (the health service's) go to the default codec.
//
// The generated Unmarshal copies every bytes and string field out of its
// input, so the receive buffer can go back to the pool at once.
type codec struct {
	fallback encoding.CodecV2
}

func newCodec() codec {
	return codec{fallback: encoding.GetCodecV2("proto")}
}

func (codec) Name() string { return "proto" }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(gogoMarshaler)
	if !ok {
		return c.fallback.Marshal(v)
	}
	size := m.Size()
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if _, err := m.MarshalToSizedBuffer(buf); err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if _, err := m.MarshalToSizedBuffer((*buf)[:size]); err != nil {
		pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(gogoUnmarshaler)
	if !ok {
		return c.fallback.Unmarshal(data, v)
	}
	if len(data) == 1 {
		return m.Unmarshal(data[0].ReadOnlyData())
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return m.Unmarshal(buf.ReadOnlyData())
}
