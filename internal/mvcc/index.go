package mvcc

import (
	"bytes"
	"sync"

	"github.com/google/btree"
)

// treeIndex maps every key to its keyIndex, ordered by key.
type treeIndex struct {
	// mu protects tree and every keyIndex in it. Readers RLock per call;
	// the writer and compaction Lock per key.
	mu   sync.RWMutex
	tree *btree.BTreeG[*keyIndex]
}

func newTreeIndex() *treeIndex {
	return &treeIndex{tree: btree.NewG(32, func(a, b *keyIndex) bool { return bytes.Compare(a.key, b.key) < 0 })}
}

// lookup returns the keyIndex of key or nil. Caller holds mu.
func (ti *treeIndex) lookup(key []byte) *keyIndex {
	ki, _ := ti.tree.Get(&keyIndex{key: key})
	return ki
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

// visit calls f for each keyIndex in [key, end); end empty means no upper
// bound. Caller holds mu.
func (ti *treeIndex) visit(key, end []byte, f func(ki *keyIndex) bool) {
	ti.tree.AscendGreaterOrEqual(&keyIndex{key: key}, func(ki *keyIndex) bool {
		if len(end) > 0 && bytes.Compare(ki.key, end) >= 0 {
			return false
		}
		return f(ki)
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
	ti.visit(key, end, func(ki *keyIndex) bool {
		if rev, _, _, err := ki.get(atRev); err == nil {
			if limit <= 0 || len(revs) < limit {
				revs = append(revs, rev)
			}
			total++
		}
		return true
	})
	return revs, total
}

// keys returns the keys alive at atRev in range, with their leases when
// atRev is current (the writer's delete path).
func (ti *treeIndex) liveKeys(key, end []byte, atRev int64) (keys [][]byte, leases []int64) {
	ti.mu.RLock()
	defer ti.mu.RUnlock()
	add := func(ki *keyIndex) {
		if _, _, _, err := ki.get(atRev); err == nil {
			keys = append(keys, ki.key)
			leases = append(leases, ki.lease)
		}
	}
	if end == nil {
		if ki := ti.lookup(key); ki != nil {
			add(ki)
		}
		return keys, leases
	}
	ti.visit(key, end, func(ki *keyIndex) bool { add(ki); return true })
	return keys, leases
}

// compact compacts every key at rev and returns the revisions to keep on
// disk. It locks per key so readers and the writer interleave.
func (ti *treeIndex) compact(rev int64) map[Revision]struct{} {
	available := make(map[Revision]struct{})
	ti.mu.Lock()
	clone := ti.tree.Clone()
	ti.mu.Unlock()
	clone.Ascend(func(ki *keyIndex) bool {
		ti.mu.Lock()
		ki.compact(rev, available)
		if ki.isEmpty() {
			ti.tree.Delete(ki)
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
	ti.tree.Ascend(func(ki *keyIndex) bool {
		ki.keep(rev, available)
		return true
	})
	return available
}

func (ti *treeIndex) len() int {
	ti.mu.RLock()
	defer ti.mu.RUnlock()
	return ti.tree.Len()
}
