package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// source is one segment to decode: its path (for errors), its bytes and size.
type source struct {
	path string
	r    io.ReaderAt
	size int64
}

// decoder reads framed records from a sequence of segments, checking the CRC
// chain across them exactly as etcd's decoder does: a zero length field or the
// end of a file moves on to the next segment; the last segment may end in a
// torn record, which is reported as ErrTornWrite; anything else wrong is a
// *CorruptionError naming the file.
type decoder struct {
	srcs []source // srcs[0] is the segment being read
	br   *bufio.Reader
	done bool // the last segment reached its end

	// off is the offset just after the last valid record of srcs[0].
	// Invariant: 0 <= off <= srcs[0].size. (off % 8 == 0 for files etcd or
	// cairn wrote; the decoder, like etcd's, also accepts unpadded frames.)
	off    int64
	recOff int64  // frame offset of the record last returned
	crc    uint32 // CRC chain value after the record last returned
	buf    []byte // holds the body of the record last returned
}

func newDecoder(srcs ...source) *decoder {
	d := &decoder{srcs: srcs}
	if len(srcs) > 0 {
		d.br = bufio.NewReaderSize(io.NewSectionReader(srcs[0].r, 0, srcs[0].size), 64<<10)
	} else {
		d.done = true
	}
	return d
}

// path is the segment the decoder is in (the tail, once it returned io.EOF).
func (d *decoder) path() string {
	if len(d.srcs) == 0 {
		return ""
	}
	return d.srcs[0].path
}

// next decodes the next record into rec. rec.Data aliases the decoder's buffer
// and is valid until the following call. At the end of the last segment it
// returns io.EOF.
func (d *decoder) next(rec *Record) error {
	*rec = Record{}
	for {
		if d.done {
			return io.EOF
		}
		src := d.srcs[0]
		var hdr [frameSizeBytes]byte
		_, err := io.ReadFull(d.br, hdr[:])
		lenField := binary.LittleEndian.Uint64(hdr[:])
		if errors.Is(err, io.EOF) || (err == nil && lenField == 0) {
			// End of the file or of its written part (preallocated zeros).
			if len(d.srcs) == 1 {
				d.done = true
				return io.EOF
			}
			d.srcs = d.srcs[1:]
			d.off = 0
			d.br.Reset(io.NewSectionReader(d.srcs[0].r, 0, d.srcs[0].size))
			continue
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return d.fail(fmt.Errorf("%w: file ends inside a length field", ErrBadRecord), true)
		}
		if err != nil {
			return fmt.Errorf("wal: read %s: %w", src.path, err)
		}

		n, pad := decodeFrameSize(lenField)
		if limit := src.size - d.off - frameSizeBytes - pad; n > limit {
			return d.fail(fmt.Errorf("%w: record length %d exceeds the %d bytes left in the file", ErrBadRecord, n, limit), true)
		}
		total := int(n + pad)
		if cap(d.buf) < total {
			d.buf = make([]byte, total)
		}
		data := d.buf[:total]
		if _, err := io.ReadFull(d.br, data); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return d.fail(fmt.Errorf("%w: file ends inside a record", ErrBadRecord), true)
			}
			return fmt.Errorf("wal: read %s: %w", src.path, err)
		}
		if err := decodeRecordBody(data[:n], rec); err != nil {
			return d.fail(err, d.isTorn(data))
		}
		if rec.Type == CrcType {
			// A crc record restarts the chain at the value the previous
			// segment ended with; a fresh decoder (crc 0) accepts any value.
			if d.crc != 0 && rec.Crc != d.crc {
				return d.fail(fmt.Errorf("%w: crc record holds %08x, chain is at %08x", ErrCRCMismatch, rec.Crc, d.crc), false)
			}
			d.crc = rec.Crc
		} else {
			crc := crc32.Update(d.crc, crcTable, rec.Data)
			if crc != rec.Crc {
				return d.fail(fmt.Errorf("%w: record holds %08x, computed %08x", ErrCRCMismatch, rec.Crc, crc), d.isTorn(data))
			}
			d.crc = crc
		}
		d.recOff = d.off
		d.off += frameSizeBytes + n + pad
		return nil
	}
}

// fail classifies a bad record at d.off. In the last segment a record that
// could be the remains of an interrupted write (torn) is ErrTornWrite, which
// Repair fixes; everything else is a *CorruptionError.
func (d *decoder) fail(cause error, torn bool) error {
	if len(d.srcs) == 1 && torn {
		return fmt.Errorf("wal: read %s at offset %d: %w (%v)", d.srcs[0].path, d.off, ErrTornWrite, cause)
	}
	return &CorruptionError{Path: d.srcs[0].path, Offset: d.off, Err: cause}
}

// isTorn reports whether the bad record just read (frame body in data) looks
// like an interrupted write in the last segment: either one of its sectors is
// all zeros (etcd's rule: sectors reach the disk whole, so a zero sector was
// never written), or nothing but zeros follows it up to the end of the file
// (the write stopped somewhere inside this record, which is the last one).
// Either way nothing after it was ever acknowledged.
func (d *decoder) isTorn(data []byte) bool {
	if len(d.srcs) != 1 {
		return false
	}
	fileOff := d.off + frameSizeBytes
	for cur := 0; cur < len(data); {
		chunk := int(minSectorSize - fileOff%minSectorSize)
		if chunk > len(data)-cur {
			chunk = len(data) - cur
		}
		if allZero(data[cur : cur+chunk]) {
			return true
		}
		fileOff += int64(chunk)
		cur += chunk
	}
	// The rest of the file is read through the buffered reader, which the
	// caller abandons after an error anyway.
	var tmp [4096]byte
	for {
		k, err := d.br.Read(tmp[:])
		if !allZero(tmp[:k]) {
			return false
		}
		if err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}

func allZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}
