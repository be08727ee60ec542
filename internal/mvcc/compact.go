package mvcc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/failpoint"
	"github.com/cairnkv/cairn/internal/schema"
)

// kvFields are the mvccpb.KeyValue fields restore needs, decoded without
// allocating.
type kvFields struct {
	key             []byte
	create, version int64
	lease           int64
}

var errProto = errors.New("bad protobuf")

// decodeKV scans an mvccpb.KeyValue encoding (fields 1 key, 2 create, 3 mod,
// 4 version, 5 value, 6 lease).
func decodeKV(b []byte) (f kvFields, err error) {
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return f, fmt.Errorf("%w: %w", ErrCorrupt, errProto)
		}
		b = b[n:]
		switch tag & 7 {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return f, fmt.Errorf("%w: %w", ErrCorrupt, errProto)
			}
			b = b[n:]
			switch tag >> 3 {
			case 2:
				f.create = int64(v)
			case 4:
				f.version = int64(v)
			case 6:
				f.lease = int64(v)
			}
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return f, fmt.Errorf("%w: %w", ErrCorrupt, errProto)
			}
			if tag>>3 == 1 {
				f.key = b[n : n+int(l)]
			}
			b = b[n+int(l):]
		default:
			return f, fmt.Errorf("%w: %w: wire type %d", ErrCorrupt, errProto, tag&7)
		}
	}
	return f, nil
}

// kvHasher computes etcd's HashKV: CRC-32 Castagnoli of "key" then of every
// revision key and value in bucket `key` up to revision, skipping revisions
// at or below compactRevision that keep does not list (unless keep is
// empty), and a tombstone exactly at compactRevision.
type kvHasher struct {
	h               hash32
	compactRevision int64
	revision        int64
	keep            map[Revision]struct{}
}

type hash32 interface {
	Write([]byte) (int, error)
	Sum32() uint32
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newKVHasher(compactRev, rev int64, keep map[Revision]struct{}) *kvHasher {
	h := crc32.New(castagnoli)
	h.Write(schema.Key)
	return &kvHasher{h: h, compactRevision: compactRev, revision: rev, keep: keep}
}

func (h *kvHasher) write(k, v []byte) {
	kr := bytesToRev(k)
	if kr.Main > h.revision {
		return
	}
	if kr.Main <= h.compactRevision && len(h.keep) > 0 {
		if _, ok := h.keep[kr]; !ok {
			return
		}
	}
	if kr.Main == h.compactRevision && isTombstone(k) {
		return
	}
	h.h.Write(k)
	h.h.Write(v)
}

func (h *kvHasher) sum() KeyValueHash {
	return KeyValueHash{Hash: h.h.Sum32(), CompactRevision: h.compactRevision, Revision: h.revision}
}

// Hash commits and returns the hash of the whole backend except the meta
// keys etcd ignores, with the current revision (Maintenance.Hash). Any
// goroutine not holding a transaction.
func (s *Store) Hash() (uint32, int64, error) {
	h, err := s.b.Hash(schema.DefaultIgnores)
	return h, s.currentRev.Load(), err
}

// HashByRev returns etcd's HashKV of revisions up to rev (0: current) and
// the current revision. A hash computed by a compaction at rev is returned
// as computed then. Errors wrap ErrCompacted (rev below the compaction
// revision) and ErrFutureRev. Any goroutine not holding a transaction.
func (s *Store) HashByRev(rev int64) (KeyValueHash, int64, error) {
	s.compactMu.Lock()
	for _, h := range s.hashes {
		if h.Revision == rev {
			s.compactMu.Unlock()
			return h, s.currentRev.Load(), nil
		}
	}
	s.compactMu.Unlock()

	s.mu.RLock()
	compactRev, currentRev := s.compactRev.Load(), s.currentRev.Load()
	if rev > 0 && rev < compactRev {
		s.mu.RUnlock()
		return KeyValueHash{}, 0, fmt.Errorf("hash at %d (compacted %d): %w", rev, compactRev, ErrCompacted)
	}
	if rev > currentRev {
		s.mu.RUnlock()
		return KeyValueHash{}, currentRev, fmt.Errorf("hash at %d (current %d): %w", rev, currentRev, ErrFutureRev)
	}
	if rev == 0 { // a negative rev hashes nothing, as in etcd
		rev = currentRev
	}
	keep := s.idx.keep(rev)
	v := s.b.Read()
	s.mu.RUnlock()
	defer v.End()
	h := newKVHasher(compactRev, rev, keep)
	v.ForEach(schema.Key, func(k, val []byte) bool {
		h.write(k, val)
		return true
	})
	return h.sum(), currentRev, nil
}

// Compact schedules compaction at rev: revisions older than rev become
// unreadable at once; their physical deletion runs in the background in
// batches. The channel closes when the deletion is done. Errors wrap
// ErrCompacted (rev <= the compaction revision; the channel then closes when
// earlier compactions finish) and ErrFutureRev (channel nil). Writer
// goroutine, not holding a write transaction.
func (s *Store) Compact(rev int64) (<-chan struct{}, error) {
	return s.CompactWithIndex(rev, 0, 0)
}

// CompactWithIndex is Compact for the raft entry at index (with term): the
// consistent index is recorded in the same backend transaction as the
// scheduled compaction revision, so no commit can hold one without the other
// (a crash between them would otherwise skip the compaction on replay). A
// refused compaction still records the index: the entry was applied. index
// 0 records nothing.
func (s *Store) CompactWithIndex(rev int64, index, term uint64) (<-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.compactLocked(rev, index, term)
}

// compactLocked schedules the compaction. Caller holds s.mu for writing. It
// does not wait for a commit: the scheduled revision reaches the disk with
// the next commit, no later than any deletion of the physical compaction
// (they are later writes of the same backend), so readers never wait here
// for an fsync.
func (s *Store) compactLocked(rev int64, index, term uint64) (<-chan struct{}, error) {
	prev := s.compactRev.Load()
	if rev <= prev {
		s.setCILocked(index, term)
		s.compactMu.Lock()
		last := s.lastCompaction
		s.compactMu.Unlock()
		return last, fmt.Errorf("compact %d (compacted %d): %w", rev, prev, ErrCompacted)
	}
	if cur := s.currentRev.Load(); rev > cur {
		s.setCILocked(index, term)
		return nil, fmt.Errorf("compact %d (current %d): %w", rev, cur, ErrFutureRev)
	}
	tx := s.b.Lock()
	err := tx.Put(schema.Meta, schema.ScheduledCompactKey, RevBytes(Revision{Main: rev}, false))
	if err == nil && index != 0 {
		s.ci, s.term, s.ciDirty = index, term, true
		s.ciPub.Store(index)
	}
	if uerr := tx.Unlock(); err == nil {
		err = uerr
	}
	if err != nil {
		return nil, fmt.Errorf("compact %d: %w", rev, err)
	}
	s.compactRev.Store(rev)

	ch := make(chan struct{})
	s.compactMu.Lock()
	wait := s.lastCompaction
	s.lastCompaction = ch
	s.compactMu.Unlock()
	go func() {
		defer close(ch)
		<-wait
		s.physicalCompact(rev, prev)
	}()
	return ch, nil
}

// physicalCompact compacts the index, then deletes the revisions <= rev the
// index no longer needs, CompactionBatchLimit per backend lock, hashing as
// it goes, and finally records meta/finishedCompactRev.
func (s *Store) physicalCompact(rev, prev int64) {
	start := time.Now()
	keep := s.idx.compact(rev)
	h := newKVHasher(prev, rev, keep)
	end := binary.BigEndian.AppendUint64(nil, uint64(rev+1))
	last := make([]byte, revBytesLen)
	limit := s.cfg.CompactionBatchLimit
	var del [][]byte
	deleted := 0
	for {
		select {
		case <-s.stopc:
			s.lg.Warn("compaction interrupted by stop", zap.Int64("compact-revision", rev))
			return
		default:
		}
		tx := s.b.Lock()
		n := 0
		var lastKey Revision
		del = del[:0]
		tx.Range(schema.Key, last, end, limit, func(k, v []byte) bool {
			n++
			lastKey = bytesToRev(k)
			if _, ok := keep[lastKey]; !ok {
				del = append(del, slices.Clone(k))
			}
			h.write(k, v)
			return true
		})
		var err error
		for _, k := range del {
			if err = tx.Delete(schema.Key, k); err != nil {
				break
			}
		}
		deleted += len(del)
		if err == nil && n < limit {
			err = tx.Put(schema.Meta, schema.FinishedCompactKey, RevBytes(Revision{Main: rev}, false))
			if uerr := tx.Unlock(); err == nil {
				err = uerr
			}
			if err != nil {
				s.lg.Error("compaction failed", zap.Int64("compact-revision", rev), zap.Error(err))
				return
			}
			hash := h.sum()
			s.storeHash(hash)
			s.lg.Info("finished scheduled compaction", zap.Int64("compact-revision", rev),
				zap.Duration("took", time.Since(start)), zap.Uint32("hash", hash.Hash), zap.Int("deleted", deleted))
			return
		}
		if uerr := tx.Unlock(); err == nil {
			err = uerr
		}
		if err == nil {
			err = s.b.ForceCommit()
		}
		if err != nil {
			s.lg.Error("compaction failed", zap.Int64("compact-revision", rev), zap.Error(err))
			return
		}
		failpoint.Crash(failpoint.CompactBetweenBatches) // test builds only
		last = appendRev(last[:0], Revision{Main: lastKey.Main, Sub: lastKey.Sub + 1})
		if d := s.cfg.CompactionSleepInterval; d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-s.stopc:
				t.Stop()
			}
		}
	}
}

func (s *Store) storeHash(h KeyValueHash) {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	s.hashes = append(s.hashes, h)
	slices.SortFunc(s.hashes, func(a, b KeyValueHash) int { return int(a.Revision - b.Revision) })
	if len(s.hashes) > maxHashes {
		s.hashes = s.hashes[len(s.hashes)-maxHashes:]
	}
}

// CompactionHashes returns the hashes computed by the last compactions
// (at most the last 10), by increasing revision. Any goroutine.
func (s *Store) CompactionHashes() []KeyValueHash {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	return slices.Clone(s.hashes)
}

// WaitCompaction returns a channel closed when every scheduled compaction
// has finished. Any goroutine.
func (s *Store) WaitCompaction() <-chan struct{} {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	return s.lastCompaction
}
