package rafthttp

import (
	"encoding/binary"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
)

// streamType names one of the two streams a member dials to each peer.
type streamType int

const (
	// streamMessage carries every message type, framed by messageEncoder.
	streamMessage streamType = iota + 1
	// streamMsgAppV2 carries MsgApp (and link heartbeats) in the msgappv2
	// format.
	streamMsgAppV2
)

// path is the URL path prefix of the stream; the dialer's hex ID follows.
func (t streamType) path() string {
	if t == streamMsgAppV2 {
		return "/raft/stream/msgapp"
	}
	return "/raft/stream/message"
}

// String is etcd's name for the stream in log lines.
func (t streamType) String() string {
	if t == streamMsgAppV2 {
		return "stream MsgApp v2"
	}
	return "stream Message"
}

// maxMessageBytes is the largest length prefix a decoder accepts (etcd's
// readBytesLimit).
const maxMessageBytes = 512 << 20

// linkHeartbeat is the message a stream writer sends when idle so the
// reader's 5 s read deadline does not fire. raft never sends a message
// without From and To, so it cannot be mistaken for a raft heartbeat.
var linkHeartbeat = raftpb.Message{Type: raftpb.MsgHeartbeat}

func isLinkHeartbeat(m *raftpb.Message) bool {
	return m.Type == raftpb.MsgHeartbeat && m.From == 0 && m.To == 0
}

// encoder writes messages to one stream. Not safe for concurrent use.
type encoder interface {
	encode(m *raftpb.Message) error
}

// decoder reads messages from one stream. Not safe for concurrent use.
type decoder interface {
	decode() (raftpb.Message, error)
}

// messageEncoder frames each message as an 8-byte big-endian length
// followed by the protobuf raftpb.Message (the "message" stream and the
// snapshot envelope). Each message goes to w in one Write.
type messageEncoder struct {
	w   io.Writer
	buf []byte // reused between messages
}

func (e *messageEncoder) encode(m *raftpb.Message) error {
	n := m.Size()
	e.buf = grow(e.buf, 8+n)
	binary.BigEndian.PutUint64(e.buf, uint64(n))
	if _, err := m.MarshalTo(e.buf[8:]); err != nil {
		return fmt.Errorf("marshal %s: %w", m.Type, err)
	}
	_, err := e.w.Write(e.buf)
	return err
}

// messageDecoder reads what messageEncoder writes. A length above limit
// fails with ErrMessageTooLarge (the stream must then be dropped).
type messageDecoder struct {
	r     io.Reader
	limit uint64 // 0 means maxMessageBytes
	hdr   [8]byte
	buf   []byte // reused between messages: Unmarshal copies what it keeps
}

func (d *messageDecoder) decode() (raftpb.Message, error) {
	var m raftpb.Message
	if _, err := io.ReadFull(d.r, d.hdr[:]); err != nil {
		return m, err
	}
	limit := d.limit
	if limit == 0 {
		limit = maxMessageBytes
	}
	n := binary.BigEndian.Uint64(d.hdr[:])
	if n > limit {
		return m, fmt.Errorf("message of %d bytes: %w", n, ErrMessageTooLarge)
	}
	d.buf = grow(d.buf, int(n))
	if _, err := io.ReadFull(d.r, d.buf); err != nil {
		return m, unexpectedEOF(err)
	}
	if err := m.Unmarshal(d.buf); err != nil {
		return m, fmt.Errorf("unmarshal raft message: %w", err)
	}
	if cap(d.buf) > maxReusedBuf {
		d.buf = nil // a snapshot envelope or a large append: do not keep it
	}
	return m, nil
}

// maxReusedBuf bounds the buffer a decoder keeps between messages.
const maxReusedBuf = 1 << 20

// unexpectedEOF turns an EOF in the middle of a record into
// io.ErrUnexpectedEOF, so that only a clean end between records reads as
// the peer closing the stream.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// grow returns b resized to n bytes, reallocating only when needed.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
