package mvcc

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairnkv/cairn/internal/schema"
)

// Events calls fn, in revision order, with the change of each revision
// from..to (inclusive) whose key match accepts (match nil: every key), as
// the event a watcher receives: a PUT with the written KeyValue, or a
// DELETE whose KeyValue holds the key and ModRevision only. It stops early
// when fn returns false. The events are fresh and owned by fn.
//
// The history from the compaction revision on is complete (a compaction at
// c keeps every change of revision c, tombstones included), so from must
// not be below FirstRev: the error then wraps ErrCompacted. A to above Rev
// is cut to Rev.
func (r *ReadTxn) Events(from, to int64, match func(key []byte) bool, fn func(ev mvccpb.Event) bool) error {
	if from < r.firstRev {
		return fmt.Errorf("events from %d (compacted %d): %w", from, r.firstRev, ErrCompacted)
	}
	to = min(to, r.rev)
	if from > to {
		return nil
	}
	start := binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(from))
	end := binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(to+1))
	var err error
	r.v.Range(schema.Key, start, end, 0, func(k, v []byte) bool {
		if len(k) != revBytesLen && !isTombstone(k) {
			err = fmt.Errorf("events: key %x: %w", k, ErrCorrupt)
			return false
		}
		if match != nil {
			f, derr := decodeKV(v)
			if derr != nil {
				err = fmt.Errorf("events: revision %v: %w", bytesToRev(k), derr)
				return false
			}
			if !match(f.key) {
				return true
			}
		}
		kv := new(mvccpb.KeyValue)
		if uerr := kv.Unmarshal(v); uerr != nil {
			err = fmt.Errorf("events: revision %v: %w: %v", bytesToRev(k), ErrCorrupt, uerr)
			return false
		}
		ev := mvccpb.Event{Type: mvccpb.PUT, Kv: kv}
		if isTombstone(k) {
			ev.Type = mvccpb.DELETE
			kv.ModRevision = bytesToRev(k).Main
		}
		return fn(ev)
	})
	return err
}
