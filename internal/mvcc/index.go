package mvcc

import (
	"bytes"
	"sync"
	"unsafe"

	"github.com/google/btree"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// treeIndex maps every key to its keyIndex, ordered by key.
type treeIndex struct {
	// mu protects tree and every keyIndex in it. Readers RLock per call;
	// the writer and compaction Lock per key.
	mu   sync.RWMutex
	tree *btree.BTreeG[indexItem]
}

// indexItem is a tree entry. The key is held in the item itself (the only
// copy of it in the index), so a comparison during a search touches the
// key's bytes only, not the keyIndex first: one cache miss per step instead
// of two on large indexes.
type indexItem struct {
	key string
	ki  *keyIndex
}

// keyBytes is the item's key as a byte slice sharing the string's memory.
// Callers must not modify it.
func (it indexItem) keyBytes() []byte { return unsafe.Slice(unsafe.StringData(it.key), len(it.key)) }

func newTreeIndex() *treeIndex {
	return &treeIndex{tree: btree.NewG(32, func(a, b indexItem) bool { return a.key < b.key })}
}

// probe is a search item for key that does not copy it. The item must not
// be stored.
func probe(key []byte) indexItem {
	return indexItem{key: unsafe.String(unsafe.SliceData(key), len(key))}
}

// insert adds ki under key. Caller holds mu.
func (ti *treeIndex) insert(key string, ki *keyIndex) {
	ti.tree.ReplaceOrInsert(indexItem{key: key, ki: ki})
}

// ascend calls f for every item in key order. Caller holds mu.
func (ti *treeIndex) ascend(f func(it indexItem) bool) {
	ti.tree.Ascend(f)
}

// lookup returns the keyIndex of key or nil. Caller holds mu.
func (ti *treeIndex) lookup(key []byte) *keyIndex {
	it, _ := ti.tree.Get(probe(key))
	return it.ki
}

// lookupItem returns the item of key (ki nil if absent). Caller holds mu.
func (ti *treeIndex) lookupItem(key []byte) indexItem {
	it, _ := ti.tree.Get(probe(key))
	return it
}

func (ti *treeIndex) get(key []byte, atRev int64) (modified, created Revision, ver int64, err error) {
	ti.mu.RLock()
	defer ti.mu.RUnlock()
	ki := ti.lookup(key)
	if ki == nil {
		return Revision{}, Revision{}, 0, errRevisionNotFound
	}
	return ki.get(atRev)
}

// visit calls f for each item in [key, end); end empty means no upper
// bound. Caller holds mu.
func (ti *treeIndex) visit(key, end []byte, f func(it indexItem) bool) {
	ti.tree.AscendGreaterOrEqual(probe(key), func(it indexItem) bool {
		if len(end) > 0 && bytes.Compare(it.keyBytes(), end) >= 0 {
			return false
		}
		return f(it)
	})
}

// revisions returns up to limit (<= 0: all) revisions of the keys in range
// at atRev and the total number of such keys. end == nil: key only.
func (ti *treeIndex) revisions(key, end []byte, atRev int64, limit int) (revs []Revision, total int) {
	ti.mu.RLock()
	defer ti.mu.RUnlock()
	if end == nil {
		ki := ti.lookup(key)
		if ki == nil {
			return nil, 0
		}
		rev, _, _, err := ki.get(atRev)
		if err != nil {
			return nil, 0
		}
		return []Revision{rev}, 1
	}
	if limit > 0 {
		revs = make([]Revision, 0, min(limit, 4096))
	}
	ti.visit(key, end, func(it indexItem) bool {
		if rev, _, _, err := it.ki.get(atRev); err == nil {
			if limit <= 0 || len(revs) < limit {
				revs = append(revs, rev)
			}
			total++
		}
		return true
	})
	return revs, total
}

// metas returns the KeyValues of the keys in range at atRev with only what
// the index knows: Key, CreateRevision, ModRevision and Version (no Value,
// no Lease), up to limit (<= 0: all). end == nil: key only. The keys share
// the index's memory: callers must not modify them.
func (ti *treeIndex) metas(key, end []byte, atRev int64, limit int) (kvs []mvccpb.KeyValue, total int) {
	ti.mu.RLock()
	defer ti.mu.RUnlock()
	meta := func(k []byte, ki *keyIndex) bool {
		mod, created, ver, err := ki.get(atRev)
		if err != nil {
			return false
		}
		if limit <= 0 || len(kvs) < limit {
			kvs = append(kvs, mvccpb.KeyValue{Key: k, CreateRevision: created.Main, ModRevision: mod.Main, Version: ver})
		}
		total++
		return true
	}
	if end == nil {
		if it := ti.lookupItem(key); it.ki != nil {
			meta(it.keyBytes(), it.ki)
		}
		return kvs, total
	}
	ti.visit(key, end, func(it indexItem) bool {
		meta(it.keyBytes(), it.ki)
		return true
	})
	return kvs, total
}

// liveKeys returns the keys alive at atRev in range, with their leases when
// atRev is current (the writer's delete path). The keys share the index's
// memory: callers must not modify them.
func (ti *treeIndex) liveKeys(key, end []byte, atRev int64) (keys [][]byte, leases []int64) {
	ti.mu.RLock()
	defer ti.mu.RUnlock()
	add := func(it indexItem) {
		if _, _, _, err := it.ki.get(atRev); err == nil {
			keys = append(keys, it.keyBytes())
			leases = append(leases, it.ki.lease)
		}
	}
	if end == nil {
		if it := ti.lookupItem(key); it.ki != nil {
			add(it)
		}
		return keys, leases
	}
	ti.visit(key, end, func(it indexItem) bool { add(it); return true })
	return keys, leases
}

// compact compacts every key at rev and returns the revisions to keep on
// disk. It locks per key so readers and the writer interleave.
func (ti *treeIndex) compact(rev int64) map[Revision]struct{} {
	available := make(map[Revision]struct{})
	ti.mu.Lock()
	clone := ti.tree.Clone()
	ti.mu.Unlock()
	clone.Ascend(func(it indexItem) bool {
		ki := it.ki
		ti.mu.Lock()
		ki.compact(rev, available)
		if ki.isEmpty() {
			ti.tree.Delete(it)
		}
		ti.mu.Unlock()
		return true
	})
	return available
}

// keep returns the revisions a compaction at rev would keep, minus
// tombstones at rev, without changing the index.
func (ti *treeIndex) keep(rev int64) map[Revision]struct{} {
	available := make(map[Revision]struct{})
	ti.mu.RLock()
	defer ti.mu.RUnlock()
	ti.ascend(func(it indexItem) bool {
		it.ki.keep(rev, available)
		return true
	})
	return available
}

func (ti *treeIndex) len() int {
	ti.mu.RLock()
	defer ti.mu.RUnlock()
	return ti.tree.Len()
}
