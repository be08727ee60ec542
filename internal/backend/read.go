package backend

import (
	"bytes"
	"hash/crc32"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	bolt "go.etcd.io/bbolt"
)

// epoch is one committed database state plus the writes published since.
type epoch struct {
	// rtx is a bbolt read tx opened right after the commit that started the
	// epoch; nil if that begin failed (views then see only the overlay).
	rtx *bolt.Tx
	// refs counts the backend's own reference plus one per open view.
	// Invariant: refs >= 0; rtx is rolled back exactly when refs reaches 0.
	refs atomic.Int64
	ov   overlay
}

func newEpoch(rtx *bolt.Tx) *epoch {
	e := &epoch{rtx: rtx}
	e.refs.Store(1)
	return e
}

func (e *epoch) release() {
	if e.refs.Add(-1) == 0 && e.rtx != nil {
		_ = e.rtx.Rollback()
	}
}

// overlay holds the writes published in an epoch, with enough history that a
// view sees exactly the writes up to the sequence it captured.
type overlay struct {
	mu sync.RWMutex
	// seq is the sequence number of the last published write transaction.
	// Invariant: every version's seq <= seq.
	seq atomic.Uint64
	// buckets maps bucket name → its published writes. Protected by mu.
	buckets map[string]*overlayBucket
	// versions and keys are carved into the versions and map keys that
	// publish creates, so a published write costs no allocation of its own
	// in the common case. Everything in them lives as long as the overlay
	// (its epoch). Writer only, under mu.
	versions []version
	keys     []byte
}

// overlaySlab is how many versions, and about how many key bytes (×32), one
// allocation serves.
const overlaySlab = 128

// newVersion returns a *version holding v, from the overlay's slab.
func (o *overlay) newVersion(v version) *version {
	if len(o.versions) == 0 {
		o.versions = make([]version, overlaySlab)
	}
	p := &o.versions[0]
	*p = v
	o.versions = o.versions[1:]
	return p
}

// keyString returns k as a string whose bytes live in the overlay's key
// slab (never written again once handed out).
func (o *overlay) keyString(k []byte) string {
	if len(k) == 0 || len(k) > overlaySlab {
		return string(k)
	}
	if cap(o.keys)-len(o.keys) < len(k) {
		o.keys = make([]byte, 0, overlaySlab*32)
	}
	start := len(o.keys)
	o.keys = append(o.keys, k...)
	b := o.keys[start:len(o.keys):len(o.keys)]
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// overlayBucket is one bucket's published writes: the newest version of
// each key, and the keys in order, so that a range read visits only the
// keys in its range instead of sorting the whole overlay (watchers catching
// up read recent revisions of bucket `key` by range, many times per epoch).
type overlayBucket struct {
	versions map[string]*version
	// sorted holds keys of versions in increasing order; unsorted the keys
	// added since that did not sort after sorted's last one (mvcc revision
	// keys always do; compaction's deletes of old revisions do not). A range
	// read merges unsorted into sorted first.
	// Invariant: sorted and unsorted together hold each key of versions
	// exactly once; sorted is strictly increasing.
	sorted, unsorted []string
}

// version is one published write of a key; prev is the older one.
// Invariant: prev == nil || prev.seq <= seq.
type version struct {
	val  []byte
	del  bool
	seq  uint64
	prev *version
}

func (v *version) at(seq uint64) *version {
	for v != nil && v.seq > seq {
		v = v.prev
	}
	return v
}

func (o *overlay) get(bucket, key []byte, seq uint64) *version {
	o.mu.RLock()
	defer o.mu.RUnlock()
	bk := o.buckets[string(bucket)]
	if bk == nil {
		return nil
	}
	return bk.versions[string(key)].at(seq)
}

type kv struct {
	k, v []byte
	del  bool
}

// collect returns the overlay entries of bucket in [start, end) visible at
// seq, sorted by key. end == nil means no upper bound.
func (o *overlay) collect(bucket, start, end []byte, seq uint64) []kv {
	o.mu.RLock()
	bk := o.buckets[string(bucket)]
	if bk != nil && len(bk.unsorted) > 0 {
		o.mu.RUnlock()
		o.mu.Lock()
		bk.merge()
		o.mu.Unlock()
		o.mu.RLock()
	}
	var out []kv
	if bk != nil {
		keys := bk.sorted
		i, _ := slices.BinarySearch(keys, string(start))
		for _, k := range keys[i:] {
			kb := unsafe.Slice(unsafe.StringData(k), len(k))
			if end != nil && bytes.Compare(kb, end) >= 0 {
				break
			}
			if v := bk.versions[k].at(seq); v != nil {
				out = append(out, kv{kb, v.val, v.del})
			}
		}
	}
	o.mu.RUnlock()
	return out
}

// merge moves unsorted into sorted. Caller holds the overlay's write lock.
func (bk *overlayBucket) merge() {
	if len(bk.unsorted) == 0 {
		return
	}
	slices.Sort(bk.unsorted)
	merged := make([]string, 0, len(bk.sorted)+len(bk.unsorted))
	a, b := bk.sorted, bk.unsorted
	for len(a) > 0 && len(b) > 0 {
		if a[0] < b[0] {
			merged, a = append(merged, a[0]), a[1:]
		} else {
			merged, b = append(merged, b[0]), b[1:]
		}
	}
	bk.sorted = append(append(merged, a...), b...)
	bk.unsorted = nil
}

// publish makes ops visible under a new sequence number. Called by the
// writer with wmu held.
func (o *overlay) publish(ops []op) {
	o.mu.Lock()
	seq := o.seq.Load() + 1
	if o.buckets == nil {
		o.buckets = make(map[string]*overlayBucket)
	}
	for i := range ops {
		p := &ops[i]
		bk := o.buckets[string(p.bucket)]
		if bk == nil {
			bk = &overlayBucket{versions: make(map[string]*version)}
			o.buckets[string(p.bucket)] = bk
		}
		prev := bk.versions[string(p.key)]
		if prev == nil {
			k := o.keyString(p.key)
			if n := len(bk.sorted); len(bk.unsorted) == 0 && (n == 0 || bk.sorted[n-1] < k) {
				bk.sorted = append(bk.sorted, k)
			} else {
				bk.unsorted = append(bk.unsorted, k)
			}
			bk.versions[k] = o.newVersion(version{val: p.val, del: p.del, seq: seq})
			continue
		}
		bk.versions[string(p.key)] = o.newVersion(version{val: p.val, del: p.del, seq: seq, prev: prev})
	}
	o.seq.Store(seq)
	o.mu.Unlock()
}

// ReadView is a consistent snapshot of the backend for reading. Obtain it
// with Backend.Read and release it with End. Its methods may be called from
// several goroutines at once. Slices it returns are valid until End and must
// not be modified.
type ReadView struct {
	e   *epoch
	seq uint64
}

// Read opens a view of every write transaction that has unlocked so far.
// Any goroutine; the caller must End the view.
func (b *Backend) Read() ReadView {
	b.epochMu.RLock()
	e := b.cur
	e.refs.Add(1)
	b.epochMu.RUnlock()
	return ReadView{e: e, seq: e.ov.seq.Load()}
}

// End releases the view. Call exactly once.
func (v ReadView) End() { v.e.release() }

// Get returns the value of key in bucket and whether it exists.
func (v ReadView) Get(bucket, key []byte) ([]byte, bool) {
	if v.seq > 0 {
		if ver := v.e.ov.get(bucket, key, v.seq); ver != nil {
			return ver.val, !ver.del
		}
	}
	if v.e.rtx == nil {
		return nil, false
	}
	return boltGet(v.e.rtx.Bucket(bucket), key)
}

// Getter returns a function for many point reads of one bucket, resolving
// the bucket and allocating a cursor once instead of per read (a range of
// 500 keys does 500 reads). The function reads this view; it is for one
// goroutine and must not be used after End.
func (v ReadView) Getter(bucket []byte) func(key []byte) ([]byte, bool) {
	var c *bolt.Cursor
	if v.e.rtx != nil {
		if bk := v.e.rtx.Bucket(bucket); bk != nil {
			c = bk.Cursor()
		}
	}
	return func(key []byte) ([]byte, bool) {
		if v.seq > 0 {
			if ver := v.e.ov.get(bucket, key, v.seq); ver != nil {
				return ver.val, !ver.del
			}
		}
		if c == nil {
			return nil, false
		}
		k, val := c.Seek(key)
		if k == nil || !bytes.Equal(k, key) {
			return nil, false
		}
		return val, true
	}
}

// Range calls fn for each key in [start, end) of bucket in key order until fn
// returns false or limit pairs were visited (limit <= 0: no limit). end == nil
// means no upper bound. A missing bucket is empty.
func (v ReadView) Range(bucket, start, end []byte, limit int, fn func(k, v []byte) bool) {
	var ov []kv
	if v.seq > 0 {
		ov = v.e.ov.collect(bucket, start, end, v.seq)
	}
	var bk *bolt.Bucket
	if v.e.rtx != nil {
		bk = v.e.rtx.Bucket(bucket)
	}
	mergeRange(bk, ov, start, end, limit, fn)
}

// ForEach calls fn for every pair of bucket in key order until fn returns
// false.
func (v ReadView) ForEach(bucket []byte, fn func(k, v []byte) bool) {
	v.Range(bucket, nil, nil, 0, fn)
}

// Buckets returns the names of the buckets committed when the view's epoch
// began (buckets created since are not listed).
func (v ReadView) Buckets() [][]byte {
	var names [][]byte
	if v.e.rtx != nil {
		_ = v.e.rtx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names = append(names, name)
			return nil
		})
	}
	return names
}

func boltGet(bk *bolt.Bucket, key []byte) ([]byte, bool) {
	if bk == nil {
		return nil, false
	}
	k, val := bk.Cursor().Seek(key)
	if k == nil || !bytes.Equal(k, key) {
		return nil, false
	}
	return val, true
}

// mergeRange walks bolt bucket bk and the sorted overlay entries ov together;
// overlay entries win on equal keys.
func mergeRange(bk *bolt.Bucket, ov []kv, start, end []byte, limit int, fn func(k, v []byte) bool) {
	var c *bolt.Cursor
	var ck, cv []byte
	inRange := func() {
		if ck != nil && end != nil && bytes.Compare(ck, end) >= 0 {
			ck = nil
		}
	}
	if bk != nil {
		c = bk.Cursor()
		if start == nil {
			ck, cv = c.First()
		} else {
			ck, cv = c.Seek(start)
		}
		inRange()
	}
	n := 0
	for ck != nil || len(ov) > 0 {
		var k, val []byte
		skip := false
		switch {
		case ck == nil:
			k, val, skip = ov[0].k, ov[0].v, ov[0].del
			ov = ov[1:]
		case len(ov) == 0:
			k, val = ck, cv
			ck, cv = c.Next()
			inRange()
		default:
			switch cmp := bytes.Compare(ov[0].k, ck); {
			case cmp < 0:
				k, val, skip = ov[0].k, ov[0].v, ov[0].del
				ov = ov[1:]
			case cmp == 0:
				k, val, skip = ov[0].k, ov[0].v, ov[0].del
				ov = ov[1:]
				ck, cv = c.Next()
				inRange()
			default:
				k, val = ck, cv
				ck, cv = c.Next()
				inRange()
			}
		}
		if skip {
			continue
		}
		if !fn(k, val) {
			return
		}
		if n++; limit > 0 && n >= limit {
			return
		}
	}
}

// Hash commits pending writes and returns the CRC-32 Castagnoli of every
// bucket name and every key and value that ignore does not reject, in bbolt
// order (etcd's Maintenance.Hash). Any goroutine not holding the WriteTx or
// a ReadView.
func (b *Backend) Hash(ignore func(bucket, key []byte) bool) (uint32, error) {
	if err := b.ForceCommit(); err != nil {
		return 0, err
	}
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	v := b.Read()
	defer v.End()
	for _, name := range v.Buckets() {
		h.Write(name)
		v.ForEach(name, func(k, val []byte) bool {
			if ignore == nil || !ignore(name, k) {
				h.Write(k)
				h.Write(val)
			}
			return true
		})
	}
	return h.Sum32(), nil
}
