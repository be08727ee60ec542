package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// Record types, numbered as etcd's walpb does.
const (
	MetadataType int64 = 1 // opaque metadata (etcd: etcdserverpb.Metadata{NodeID, ClusterID}); heads every segment
	EntryType    int64 = 2 // one marshalled raftpb.Entry
	StateType    int64 = 3 // one marshalled raftpb.HardState
	CrcType      int64 = 4 // no data; Crc carries the CRC chain value at the end of the previous segment
	SnapshotType int64 = 5 // one marshalled walpb.Snapshot
)

const (
	frameSizeBytes = 8   // little-endian length field before every record
	minSectorSize  = 512 // the unit a disk writes atomically, for torn-write detection
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Record is one decoded walpb.Record {type=1 int64, crc=2 uint32, data=3 bytes}.
//
// Crc is CRC-32 Castagnoli over the Data of every non-crc record from the
// start of the chain up to and including this one; a CrcType record resets
// the chain to its own Crc value.
type Record struct {
	Type int64
	Crc  uint32
	Data []byte // nil when the field is absent on the wire
}

var zeroPad [8]byte

// encodeFrameSize returns the 8-byte length field for a record body of n
// bytes and the number of padding bytes that follow it. The body length sits
// in the low 56 bits; when padding is needed the top byte is 0x80|pad.
//
// Invariant: (n + pad) % 8 == 0 and 0 <= pad < 8, so every frame starts at an
// 8-byte-aligned offset and its length field never straddles a sector.
func encodeFrameSize(n int) (lenField uint64, pad int) {
	lenField = uint64(n)
	pad = (8 - n%8) % 8
	if pad != 0 {
		lenField |= uint64(0x80|pad) << 56
	}
	return lenField, pad
}

// decodeFrameSize is the inverse of encodeFrameSize. Like etcd, it treats the
// top byte as padding only when its high bit is set.
func decodeFrameSize(lenField uint64) (n, pad int64) {
	n = int64(lenField &^ (uint64(0xff) << 56))
	if int64(lenField) < 0 {
		pad = int64((lenField >> 56) & 0x7)
	}
	return n, pad
}

// appendRecordBody appends the protobuf encoding of a walpb.Record, byte for
// byte what etcd's gogo-generated Marshal produces: type and crc are always
// present (non-nullable proto2 fields), data only when non-nil.
func appendRecordBody(b []byte, typ int64, crc uint32, data []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(typ))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(crc))
	if data != nil {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, data)
	}
	return b
}

// appendFrame appends one framed record (length field, body, padding) to b.
func appendFrame(b []byte, typ int64, crc uint32, data []byte) []byte {
	start := len(b)
	b = append(b, zeroPad[:]...)
	b = appendRecordBody(b, typ, crc, data)
	lenField, pad := encodeFrameSize(len(b) - start - frameSizeBytes)
	b = append(b, zeroPad[:pad]...)
	binary.LittleEndian.PutUint64(b[start:], lenField)
	return b
}

// decodeRecordBody parses a walpb.Record. rec.Data aliases b. Unknown fields
// are skipped, as a proto2 decoder does; a known field with the wrong wire
// type or a truncated field is an error.
func decodeRecordBody(b []byte, rec *Record) error {
	*rec = Record{}
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrBadRecord, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == 1 && wt == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return fmt.Errorf("%w: type: %v", ErrBadRecord, protowire.ParseError(m))
			}
			rec.Type, n = int64(v), m
		case num == 2 && wt == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return fmt.Errorf("%w: crc: %v", ErrBadRecord, protowire.ParseError(m))
			}
			rec.Crc, n = uint32(v), m
		case num == 3 && wt == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return fmt.Errorf("%w: data: %v", ErrBadRecord, protowire.ParseError(m))
			}
			if v == nil {
				v = b[:0]
			}
			rec.Data, n = v, m
		case num >= 1 && num <= 3:
			return fmt.Errorf("%w: field %d has wire type %d", ErrBadRecord, num, wt)
		default:
			n = protowire.ConsumeFieldValue(num, wt, b)
			if n < 0 {
				return fmt.Errorf("%w: field %d: %v", ErrBadRecord, num, protowire.ParseError(n))
			}
		}
		b = b[n:]
	}
	return nil
}

// Snapshot is etcd's walpb.Snapshot: the index and term of a raft snapshot,
// recorded in the WAL so that replay can start after it. ConfState is nil only
// for the initial zero snapshot (and in WALs written before etcd 3.5).
type Snapshot struct {
	Index     uint64
	Term      uint64
	ConfState *raftpb.ConfState
}

// marshal encodes s as gogo's walpb.Snapshot.Marshal does.
func (s *Snapshot) marshal() ([]byte, error) {
	b := make([]byte, 0, 24)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, s.Index)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, s.Term)
	if s.ConfState != nil {
		cs, err := s.ConfState.Marshal()
		if err != nil {
			return nil, fmt.Errorf("marshal conf state: %w", err)
		}
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, cs)
	}
	return b, nil
}

func unmarshalSnapshot(b []byte) (Snapshot, error) {
	var s Snapshot
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return s, fmt.Errorf("%w: snapshot: %v", ErrBadRecord, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && wt == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return s, fmt.Errorf("%w: snapshot: %v", ErrBadRecord, protowire.ParseError(m))
			}
			if num == 1 {
				s.Index = v
			} else {
				s.Term = v
			}
			n = m
		case num == 3 && wt == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return s, fmt.Errorf("%w: snapshot: %v", ErrBadRecord, protowire.ParseError(m))
			}
			var cs raftpb.ConfState
			if err := cs.Unmarshal(v); err != nil {
				return s, fmt.Errorf("%w: snapshot conf state: %v", ErrBadRecord, err)
			}
			s.ConfState, n = &cs, m
		case num >= 1 && num <= 3:
			return s, fmt.Errorf("%w: snapshot field %d has wire type %d", ErrBadRecord, num, wt)
		default:
			n = protowire.ConsumeFieldValue(num, wt, b)
			if n < 0 {
				return s, fmt.Errorf("%w: snapshot: %v", ErrBadRecord, protowire.ParseError(n))
			}
		}
		b = b[n:]
	}
	return s, nil
}
