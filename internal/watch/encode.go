package watch

import (
	"encoding/binary"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Message is what a stream hands its sender: a *pb.WatchResponse, or an
// *EncodedResponse whose events are already in wire form. Both marshal
// themselves the way etcd's generated (gogo/protobuf) code does, which is
// what cairn's gRPC codec calls.
type Message interface {
	Size() int
	// MarshalToSizedBuffer writes the message at the end of b, which
	// must be at least Size() bytes, and returns how many bytes it wrote.
	MarshalToSizedBuffer(b []byte) (int, error)
}

var (
	_ Message = (*pb.WatchResponse)(nil)
	_ Message = (*EncodedResponse)(nil)
)

// EncodedResponse is a WatchResponse whose events were encoded once and are
// shared by every watcher they reach: a prefix watched by 10,000 watchers
// encodes each event once instead of 10,000 times. Its bytes are exactly
// those of the equivalent pb.WatchResponse (the events field, number 11, is
// the last one gogo writes, so the head's fields followed by the encoded
// events are the same bytes).
type EncodedResponse struct {
	// Head holds every field but the events.
	Head *pb.WatchResponse
	// Events are the events, each as field 11 of a WatchResponse: tag,
	// length and the encoded mvccpb.Event. Shared: never modified.
	Events [][]byte
	// eventBytes is the sum of len(Events[i]).
	eventBytes int
}

// Size is the encoded size of the whole response.
func (r *EncodedResponse) Size() int { return r.Head.Size() + r.eventBytes }

// MarshalToSizedBuffer writes the response at the end of b.
func (r *EncodedResponse) MarshalToSizedBuffer(b []byte) (int, error) {
	i := len(b)
	for j := len(r.Events) - 1; j >= 0; j-- {
		i -= len(r.Events[j])
		copy(b[i:], r.Events[j])
	}
	n, err := r.Head.MarshalToSizedBuffer(b[:i])
	if err != nil {
		return 0, err
	}
	return len(b) - i + n, nil
}

// Decode returns the response as a pb.WatchResponse (for tests and for
// senders that need one). It encodes and decodes the whole response.
func (r *EncodedResponse) Decode() (*pb.WatchResponse, error) {
	b := make([]byte, r.Size())
	n, err := r.MarshalToSizedBuffer(b)
	if err != nil {
		return nil, err
	}
	var out pb.WatchResponse
	if err := out.Unmarshal(b[len(b)-n:]); err != nil {
		return nil, fmt.Errorf("decode encoded watch response: %w", err)
	}
	return &out, nil
}

// Response returns m as a pb.WatchResponse, decoding an EncodedResponse.
func Response(m Message) (*pb.WatchResponse, error) {
	switch r := m.(type) {
	case *pb.WatchResponse:
		return r, nil
	case *EncodedResponse:
		return r.Decode()
	}
	return nil, fmt.Errorf("watch: unknown message type %T", m)
}

// eventsField is the tag of WatchResponse.events (field 11, length-delimited).
const eventsField = 11<<3 | 2

// encodeEvent returns ev as field 11 of a WatchResponse.
func encodeEvent(ev *mvccpb.Event) []byte {
	n := ev.Size()
	b := make([]byte, 1+sovLen(n)+n)
	b[0] = eventsField
	k := binary.PutUvarint(b[1:], uint64(n))
	if _, err := ev.MarshalToSizedBuffer(b[1+k:]); err != nil {
		// Marshalling a well-formed event into a buffer of its own size
		// cannot fail.
		panic(fmt.Sprintf("watch: encode event: %v", err))
	}
	return b
}

// encoded returns e in wire form (with its previous value when prev),
// encoding it on first use; every later watcher shares those bytes.
func (h *Hub) encoded(e *event, prev bool) []byte {
	slot := &e.enc
	if prev {
		slot = &e.encPrev
	}
	if b := slot.Load(); b != nil {
		return *b
	}
	var b []byte
	if prev {
		b = encodeEvent(h.withPrev(e))
	} else {
		b = encodeEvent(&e.ev)
	}
	if slot.CompareAndSwap(nil, &b) {
		return b
	}
	return *slot.Load()
}
