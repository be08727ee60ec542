package mvcc

import (
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/schema"
)

// WriteTxn is the store's write transaction: all its changes share revision
// Rev()+1, with sub-revisions in order. Obtain it with Store.Write and finish
// it with End, on one goroutine. It reads its own writes.
type WriteTxn struct {
	s  *Store
	tx *backend.WriteTx
	// beginRev is the store revision when the transaction began.
	beginRev int64
	// changes are the KeyValues written (tombstones carry only Key). A new
	// slice per transaction: End hands it to OnEvents.
	changes []mvccpb.KeyValue
	// slab is carved into revision keys (bbolt keeps the keys until commit).
	slab []byte
	// evs is End's events buffer, reused from one transaction to the next
	// (OnEvents does not keep the slice).
	evs []mvccpb.Event
	// valSlab is carved into encoded KeyValues of small values (bbolt and
	// the backend's read overlay keep them until the commit's epoch ends).
	valSlab []byte
}

// valSlabBytes is one allocation of valSlab; larger values get their own.
const valSlabBytes = 32 << 10

// valBuf returns an n-byte buffer for an encoded KeyValue.
func (w *WriteTxn) valBuf(n int) []byte {
	if n > valSlabBytes/8 {
		return make([]byte, n)
	}
	if len(w.valSlab) < n {
		w.valSlab = make([]byte, valSlabBytes)
	}
	b := w.valSlab[:n:n]
	w.valSlab = w.valSlab[n:]
	return b
}

// Write opens the write transaction, waiting for the backend write lock.
// Writer goroutine only; see the package threading rules.
func (s *Store) Write() *WriteTxn {
	s.mu.RLock()
	w := &s.w
	w.tx = s.b.Lock()
	w.beginRev = s.currentRev.Load()
	w.changes = nil
	return w
}

// Rev is the store revision before this transaction.
func (w *WriteTxn) Rev() int64 { return w.beginRev }

// Changes is the number of changes so far.
func (w *WriteTxn) Changes() int { return len(w.changes) }

// curRev is the revision reads in the transaction see.
func (w *WriteTxn) curRev() int64 {
	if len(w.changes) > 0 {
		return w.beginRev + 1
	}
	return w.beginRev
}

// Range is ReadTxn.Range seeing this transaction's writes.
func (w *WriteTxn) Range(key, end []byte, ro RangeOptions) (RangeResult, error) {
	return w.s.rangeKeys(key, end, w.curRev(), ro, func(k []byte) ([]byte, bool) { return w.tx.Get(schema.Key, k) })
}

func (w *WriteTxn) revKey(r Revision, tomb bool) []byte {
	n := revBytesLen
	if tomb {
		n = markedRevBytesLen
	}
	if len(w.slab) < n {
		w.slab = make([]byte, 64*markedRevBytesLen)
	}
	k := appendRev(w.slab[:0:n], r)
	if tomb {
		k = append(k, markTombstone)
	}
	w.slab = w.slab[n:]
	return k
}

// Put writes key=value with lease (0: none) at revision Rev()+1 and returns
// that revision. key and value must not be modified afterwards. The error is
// a backend error: the store is then unusable.
func (w *WriteTxn) Put(key, value []byte, lease int64) (int64, error) {
	s := w.s
	rev := Revision{Main: w.beginRev + 1, Sub: int64(len(w.changes))}
	s.idx.mu.Lock()
	ki := s.idx.lookup(key)
	created, ver, oldLease := rev.Main, int64(1), int64(0)
	if ki != nil {
		if _, c, v, err := ki.get(rev.Main); err == nil {
			created, ver, oldLease = c.Main, v+1, ki.lease
		}
	}
	kv := mvccpb.KeyValue{Key: key, Value: value, CreateRevision: created, ModRevision: rev.Main, Version: ver, Lease: lease}
	buf := w.valBuf(kv.Size())
	if _, err := kv.MarshalToSizedBuffer(buf); err != nil {
		s.idx.mu.Unlock()
		return 0, fmt.Errorf("put %q: marshal: %w", key, err)
	}
	if err := w.tx.PutSeq(schema.Key, w.revKey(rev, false), buf); err != nil {
		s.idx.mu.Unlock()
		return 0, fmt.Errorf("put %q: %w", key, err)
	}
	if ki == nil {
		ki = &keyIndex{}
		ki.put(rev)
		s.idx.insert(string(key), ki)
	} else {
		ki.put(rev)
	}
	ki.lease = lease
	s.idx.mu.Unlock()
	w.changes = append(w.changes, kv)
	if oldLease != lease && s.cfg.Lessor != nil {
		if oldLease != 0 {
			s.cfg.Lessor.Detach(oldLease, key)
		}
		if lease != 0 {
			s.cfg.Lessor.Attach(lease, key)
		}
	}
	return rev.Main, nil
}

// DeleteRange deletes the keys in [key, end) (end conventions as Range) and
// returns how many and the transaction's revision (Rev()+1 if anything was
// written in the transaction, else Rev()).
func (w *WriteTxn) DeleteRange(key, end []byte) (n, rev int64, err error) {
	s := w.s
	keys, leases := s.idx.liveKeys(key, normEnd(end), w.curRev())
	for i, k := range keys {
		r := Revision{Main: w.beginRev + 1, Sub: int64(len(w.changes))}
		kv := mvccpb.KeyValue{Key: k}
		buf := make([]byte, kv.Size())
		if _, err := kv.MarshalToSizedBuffer(buf); err != nil {
			return n, w.curRev(), fmt.Errorf("delete %q: marshal: %w", k, err)
		}
		if err := w.tx.PutSeq(schema.Key, w.revKey(r, true), buf); err != nil {
			return n, w.curRev(), fmt.Errorf("delete %q: %w", k, err)
		}
		s.idx.mu.Lock()
		ki := s.idx.lookup(k)
		var terr error
		if ki == nil {
			terr = errRevisionNotFound
		} else {
			terr = ki.tombstone(r)
		}
		s.idx.mu.Unlock()
		if terr != nil {
			return n, w.curRev(), fmt.Errorf("delete %q: index: %w: %v", k, ErrCorrupt, terr)
		}
		w.changes = append(w.changes, kv)
		n++
		if leases[i] != 0 && s.cfg.Lessor != nil {
			s.cfg.Lessor.Detach(leases[i], k)
		}
	}
	return n, w.curRev(), nil
}

// SetConsistentIndex records the raft index and term of the entry this
// transaction applies. They are written to meta/consistent_index and
// meta/term in the backend transaction that commits this transaction's
// changes (a pre-commit hook), so disk state and index never diverge.
func (w *WriteTxn) SetConsistentIndex(index, term uint64) {
	s := w.s
	s.ci, s.term, s.ciDirty = index, term, true
	s.ciPub.Store(index)
	w.tx.Touch()
}

// End makes the changes visible to readers at revision Rev()+1 (when there
// are any), releases the write lock, then passes the events to OnEvents.
// The error is a backend commit error.
func (w *WriteTxn) End() error {
	s := w.s
	err := w.tx.Unlock()
	w.tx = nil
	changes := w.changes
	w.changes = nil
	if len(changes) == 0 {
		s.mu.RUnlock()
		return err
	}
	rev := w.beginRev + 1
	s.currentRev.Store(rev)
	s.mu.RUnlock()
	if s.cfg.OnEvents != nil {
		evs := w.evs[:0]
		if cap(evs) < len(changes) || cap(evs) > maxReusedEvents {
			evs = make([]mvccpb.Event, 0, len(changes))
		}
		evs = evs[:len(changes)]
		for i := range changes {
			kv := &changes[i]
			if kv.ModRevision == 0 { // tombstone
				kv.ModRevision = rev
				evs[i] = mvccpb.Event{Type: mvccpb.DELETE, Kv: kv}
			} else {
				evs[i] = mvccpb.Event{Type: mvccpb.PUT, Kv: kv}
			}
		}
		s.cfg.OnEvents(rev, evs)
		clear(evs)
		w.evs = evs[:0]
	}
	return err
}

// maxReusedEvents bounds the events buffer kept between transactions.
const maxReusedEvents = 1024

// SetConsistentIndex records index and term without a write transaction of
// the caller's (for entries that change nothing in the store); they are
// persisted by the next commit. Writer goroutine, not holding a WriteTxn.
func (s *Store) SetConsistentIndex(index, term uint64) {
	s.setCILocked(index, term)
}

// setCILocked records index and term under the backend's write lock; index
// 0 records nothing.
func (s *Store) setCILocked(index, term uint64) {
	if index == 0 {
		return
	}
	tx := s.b.Lock()
	s.ci, s.term, s.ciDirty = index, term, true
	s.ciPub.Store(index)
	tx.Touch()
	_ = tx.Unlock() // no writes: Unlock can only report an earlier commit error
}
