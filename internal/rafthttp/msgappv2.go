package rafthttp

import (
	"encoding/binary"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
)

// msgappv2 record tags (spec 3.3).
const (
	tagLinkHeartbeat byte = 0x00
	tagAppEntries    byte = 0x01
	tagFullMessage   byte = 0x02
)

// maxAppEntries bounds the entry count of one AppEntries record, so that
// a corrupt count cannot make the decoder allocate without bound. raft's
// MsgApp holds at most MaxSizePerMsg (1 MiB) of entries; 16M entries is far
// beyond any real batch.
const maxAppEntries = 1 << 24

// appState is the (term, index) pair both ends of a msgappv2 stream keep.
// It starts at zero with each connection and changes identically on both
// sides, so every record must be encoded and decoded in order.
//
// Invariant: after a record, index = the Index of the last entry the
// stream carried (or the Index of a full message without entries), and
// term = the Term of the last full message.
type appState struct {
	term, index uint64
}

// shortForm reports whether m can go as an AppEntries record: a MsgApp
// that continues exactly where the stream's state stands.
func (s appState) shortForm(m *raftpb.Message) bool {
	return m.Type == raftpb.MsgApp && m.Index == s.index && m.LogTerm == s.term && m.Term == s.term
}

// afterFull moves the state past a full message.
func (s *appState) afterFull(m *raftpb.Message) {
	s.term = m.Term
	s.index = m.Index
	if n := len(m.Entries); n > 0 {
		s.index = m.Entries[n-1].Index
	}
}

// msgAppV2Encoder writes the msgappv2 format: a tag byte then the record.
// Each record goes to w in one Write.
type msgAppV2Encoder struct {
	w     io.Writer
	state appState
	buf   []byte // reused between records
}

func (e *msgAppV2Encoder) encode(m *raftpb.Message) error {
	switch {
	case isLinkHeartbeat(m):
		e.buf = append(e.buf[:0], tagLinkHeartbeat)
	case e.state.shortForm(m):
		size := 1 + 8 + 8
		for i := range m.Entries {
			size += 8 + m.Entries[i].Size()
		}
		e.buf = grow(e.buf, size)
		e.buf[0] = tagAppEntries
		binary.BigEndian.PutUint64(e.buf[1:], uint64(len(m.Entries)))
		off := 9
		for i := range m.Entries {
			n := m.Entries[i].Size()
			binary.BigEndian.PutUint64(e.buf[off:], uint64(n))
			if _, err := m.Entries[i].MarshalTo(e.buf[off+8:]); err != nil {
				return fmt.Errorf("marshal entry %d: %w", m.Entries[i].Index, err)
			}
			off += 8 + n
		}
		binary.BigEndian.PutUint64(e.buf[off:], m.Commit)
		e.state.index += uint64(len(m.Entries))
	default:
		n := m.Size()
		e.buf = grow(e.buf, 1+8+n)
		e.buf[0] = tagFullMessage
		binary.BigEndian.PutUint64(e.buf[1:], uint64(n))
		if _, err := m.MarshalTo(e.buf[9:]); err != nil {
			return fmt.Errorf("marshal %s: %w", m.Type, err)
		}
		e.state.afterFull(m)
	}
	_, err := e.w.Write(e.buf)
	return err
}

// msgAppV2Decoder reads what msgAppV2Encoder writes. local and remote fill
// To and From of the MsgApps rebuilt from AppEntries records.
type msgAppV2Decoder struct {
	r             io.Reader
	local, remote uint64
	state         appState
	hdr           [8]byte
	buf           []byte // reused for entries
}

func (d *msgAppV2Decoder) decode() (raftpb.Message, error) {
	var tag [1]byte
	if _, err := io.ReadFull(d.r, tag[:]); err != nil {
		return raftpb.Message{}, err
	}
	switch tag[0] {
	case tagLinkHeartbeat:
		return linkHeartbeat, nil
	case tagAppEntries:
		return d.appEntries()
	case tagFullMessage:
		n, err := d.readUint64()
		if err != nil {
			return raftpb.Message{}, err
		}
		if n > maxMessageBytes {
			return raftpb.Message{}, fmt.Errorf("message of %d bytes: %w", n, ErrMessageTooLarge)
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(d.r, buf); err != nil {
			return raftpb.Message{}, unexpectedEOF(err)
		}
		var m raftpb.Message
		if err := m.Unmarshal(buf); err != nil {
			return raftpb.Message{}, fmt.Errorf("unmarshal raft message: %w", err)
		}
		d.state.afterFull(&m)
		return m, nil
	default:
		return raftpb.Message{}, fmt.Errorf("failed to parse type %d in msgappv2 stream", tag[0])
	}
}

func (d *msgAppV2Decoder) appEntries() (raftpb.Message, error) {
	m := raftpb.Message{
		Type:    raftpb.MsgApp,
		From:    d.remote,
		To:      d.local,
		Term:    d.state.term,
		LogTerm: d.state.term,
		Index:   d.state.index,
	}
	k, err := d.readUint64()
	if err != nil {
		return m, err
	}
	if k > maxAppEntries {
		return m, fmt.Errorf("AppEntries record of %d entries: %w", k, ErrMessageTooLarge)
	}
	if k > 0 {
		m.Entries = make([]raftpb.Entry, 0, min(k, 1024))
	}
	for i := uint64(0); i < k; i++ {
		n, err := d.readUint64()
		if err != nil {
			return m, err
		}
		if n > maxMessageBytes {
			return m, fmt.Errorf("entry of %d bytes: %w", n, ErrMessageTooLarge)
		}
		d.buf = grow(d.buf, int(n))
		if _, err := io.ReadFull(d.r, d.buf); err != nil {
			return m, unexpectedEOF(err)
		}
		var e raftpb.Entry
		// Unmarshal copies Data out of d.buf, so d.buf can be reused.
		if err := e.Unmarshal(d.buf); err != nil {
			return m, fmt.Errorf("unmarshal entry: %w", err)
		}
		m.Entries = append(m.Entries, e)
	}
	commit, err := d.readUint64()
	if err != nil {
		return m, err
	}
	m.Commit = commit
	d.state.index += k
	return m, nil
}

// readUint64 reads a big-endian uint64 that must be there (an EOF is
// unexpected: it falls inside a record).
func (d *msgAppV2Decoder) readUint64() (uint64, error) {
	if _, err := io.ReadFull(d.r, d.hdr[:]); err != nil {
		return 0, unexpectedEOF(err)
	}
	return binary.BigEndian.Uint64(d.hdr[:]), nil
}
