package wal

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// seedSegment is the start of a real segment: crc, metadata, snapshot, two
// entries and a state record, as Create and Save write them.
func seedSegment() []byte {
	var crc uint32
	w := &WAL{}
	w.frame(&crc, CrcType, nil)
	w.frame(&crc, MetadataType, []byte("metadata"))
	s, _ := (&Snapshot{}).marshal()
	w.frame(&crc, SnapshotType, s)
	for i := uint64(1); i <= 2; i++ {
		e := raftpb.Entry{Term: 1, Index: i, Data: []byte("x")}
		w.frameMsg(&crc, EntryType, &e)
	}
	w.frameMsg(&crc, StateType, &raftpb.HardState{Term: 1, Vote: 1, Commit: 2})
	return w.buf
}

// FuzzDecoder feeds arbitrary bytes to the record decoder as the last segment
// of a WAL. It must never panic, every error must be io.EOF, a torn write or
// a corruption error, and every record it accepts must re-encode to a frame
// that decodes to the same record.
func FuzzDecoder(f *testing.F) {
	seg := seedSegment()
	f.Add(seg)
	f.Add(append(append([]byte(nil), seg...), make([]byte, 64)...))
	f.Add(seg[:len(seg)-5])
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Add([]byte{0x08, 0, 0, 0, 0, 0, 0, 0x80 | 4, 0x08, 0x04, 0x10, 0x00, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := newDecoder(source{path: "fuzz.wal", r: bytes.NewReader(b), size: int64(len(b))})
		var rec Record
		for i := 0; ; i++ {
			err := d.next(&rec)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrTornWrite) && !IsCorruption(err) {
					t.Fatalf("unexpected error class: %v", err)
				}
				return
			}
			if d.off <= 0 || d.off > int64(len(b)) {
				t.Fatalf("offset %d out of bounds (len %d)", d.off, len(b))
			}
			fr := appendFrame(nil, rec.Type, rec.Crc, rec.Data)
			var again Record
			lf, pad := decodeFrameSize(uint64(fr[0]) | uint64(fr[1])<<8 | uint64(fr[2])<<16 | uint64(fr[3])<<24 |
				uint64(fr[4])<<32 | uint64(fr[5])<<40 | uint64(fr[6])<<48 | uint64(fr[7])<<56)
			if int64(len(fr)) != 8+lf+pad {
				t.Fatalf("frame length %d, header says %d+%d", len(fr), lf, pad)
			}
			if err := decodeRecordBody(fr[8:8+lf], &again); err != nil {
				t.Fatalf("re-encoded record does not decode: %v", err)
			}
			if again.Type != rec.Type || again.Crc != rec.Crc || !bytes.Equal(again.Data, rec.Data) || (again.Data == nil) != (rec.Data == nil) {
				t.Fatalf("record %d: %+v re-decoded as %+v", i, rec, again)
			}
		}
	})
}

// FuzzRecordBody checks the protobuf body decoder alone.
func FuzzRecordBody(f *testing.F) {
	f.Add(appendRecordBody(nil, EntryType, 7, []byte("abc")))
	f.Add([]byte{0x08, 0x04, 0x10, 0x00})
	f.Add([]byte{0x1a, 0x80})
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		var rec Record
		if err := decodeRecordBody(b, &rec); err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error does not wrap ErrBadRecord: %v", err)
			}
			return
		}
		var again Record
		if err := decodeRecordBody(appendRecordBody(nil, rec.Type, rec.Crc, rec.Data), &again); err != nil ||
			again.Type != rec.Type || again.Crc != rec.Crc || !bytes.Equal(again.Data, rec.Data) {
			t.Fatalf("%+v -> %+v (%v)", rec, again, err)
		}
	})
}
