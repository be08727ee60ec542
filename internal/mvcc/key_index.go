package mvcc

import (
	"bytes"
	"fmt"

	"github.com/cairnkv/cairn/internal/failpoint"
)

// keyIndex is the history of one key as a list of generations. A generation
// is the life of the key from a creation to a deletion: its revisions, the
// last one being the tombstone when the generation has ended. The last
// generation is the current one and is empty when the key is deleted.
//
// Example: put@2, put@4, delete@6, put@8 gives
//
//	{created 2, ver 3, revs [2 4 6]} {created 8, ver 1, revs [8]}
//
// Compaction at revision c removes, from every generation, revisions older
// than the newest one <= c, and removes whole generations whose tombstone is
// < c. A tombstone exactly at c is kept (etcd > 3.5.15 does the same) and
// dropped by the next compaction.
//
// The key itself lives in the index's tree item, not here: a keyIndex of one
// key is 48 bytes, and a million keys cost 32 MB less than with the key's
// slice header in the struct (it moved from the 80-byte size class).
type keyIndex struct {
	// modified is the last revision of the key (put or tombstone).
	modified Revision
	// Invariant: len(generations) >= 1; every generation but the last is
	// non-empty and ends with its tombstone; revisions strictly increase
	// across generations.
	generations []generation
	// lease is the lease of the live value. Invariant: lease == 0 when the
	// last generation is empty.
	lease int64
}

type generation struct {
	// ver is the number of puts in the generation, counting compacted ones
	// (the tombstone counts too, as in etcd).
	ver     int64
	created Revision
	revs    []Revision
}

func (g *generation) isEmpty() bool { return len(g.revs) == 0 }

// put records a put (or, through tombstone, a delete) at rev.
func (ki *keyIndex) put(rev Revision) {
	if len(ki.generations) == 0 {
		ki.generations = []generation{{}}
	}
	g := &ki.generations[len(ki.generations)-1]
	if g.isEmpty() {
		g.created = rev
	}
	g.revs = append(g.revs, rev)
	g.ver++
	ki.modified = rev
}

// restore starts the index from a revision found on disk whose earlier
// history was compacted away.
func (ki *keyIndex) restore(created, modified Revision, ver int64) {
	ki.modified = modified
	ki.generations = []generation{{created: created, ver: ver, revs: []Revision{modified}}}
}

// tombstone records a delete at rev and starts a new empty generation.
func (ki *keyIndex) tombstone(rev Revision) error {
	if ki.isEmpty() || ki.generations[len(ki.generations)-1].isEmpty() {
		return errRevisionNotFound
	}
	ki.put(rev)
	ki.generations = append(ki.generations, generation{})
	ki.lease = 0
	return nil
}

// live reports whether the key currently exists.
func (ki *keyIndex) live() bool {
	return !ki.generations[len(ki.generations)-1].isEmpty()
}

func (ki *keyIndex) isEmpty() bool {
	return len(ki.generations) == 1 && ki.generations[0].isEmpty()
}

// get returns the newest revision <= atRev of the generation alive at atRev,
// its generation's creation revision and the key's version at that revision.
func (ki *keyIndex) get(atRev int64) (modified, created Revision, ver int64, err error) {
	g := ki.findGeneration(atRev)
	if g == nil {
		return Revision{}, Revision{}, 0, errRevisionNotFound
	}
	for i := len(g.revs) - 1; i >= 0; i-- {
		if g.revs[i].Main <= atRev {
			return g.revs[i], g.created, g.ver - int64(len(g.revs)-1-i), nil
		}
	}
	return Revision{}, Revision{}, 0, errRevisionNotFound
}

// findGeneration returns the generation alive at rev, or nil.
func (ki *keyIndex) findGeneration(rev int64) *generation {
	last := len(ki.generations) - 1
	for i := last; i >= 0; i-- {
		g := &ki.generations[i]
		if g.isEmpty() {
			continue
		}
		if i != last && g.revs[len(g.revs)-1].Main <= rev {
			return nil // deleted at or before rev
		}
		if g.revs[0].Main <= rev {
			return g
		}
	}
	return nil
}

// since returns the revisions >= rev, keeping only the last one per main
// revision (for watch catch-up).
func (ki *keyIndex) since(rev int64) []Revision {
	from := Revision{Main: rev}
	gi := len(ki.generations) - 1
	for ; gi > 0; gi-- {
		g := &ki.generations[gi]
		if g.isEmpty() {
			continue
		}
		if from.GreaterThan(g.created) {
			break
		}
	}
	var out []Revision
	var last int64
	for ; gi < len(ki.generations); gi++ {
		for _, r := range ki.generations[gi].revs {
			if from.GreaterThan(r) {
				continue
			}
			if r.Main == last {
				out[len(out)-1] = r
				continue
			}
			out = append(out, r)
			last = r.Main
		}
	}
	return out
}

// compactPoint finds, for compaction at atRev, the first generation to keep
// and the index of its newest revision <= atRev (-1 if none), adding that
// revision to available.
func (ki *keyIndex) compactPoint(atRev int64, available map[Revision]struct{}) (gi, ri int) {
	for gi < len(ki.generations)-1 {
		g, next := &ki.generations[gi], &ki.generations[gi+1]
		// Stop at the generation alive at atRev. The second test only
		// matters when a key is deleted and put again in one transaction
		// (which etcd's API forbids): both have main revision atRev.
		if g.revs[len(g.revs)-1].Main >= atRev && (next.isEmpty() || next.revs[0].Main > atRev) {
			break
		}
		gi++
	}
	g := &ki.generations[gi]
	ri = -1
	for i := len(g.revs) - 1; i >= 0; i-- {
		if g.revs[i].Main <= atRev {
			available[g.revs[i]] = struct{}{}
			ri = i
			break
		}
	}
	return gi, ri
}

// compact drops history older than atRev and records the revisions that
// must stay on disk in available.
func (ki *keyIndex) compact(atRev int64, available map[Revision]struct{}) {
	gi, ri := ki.compactPoint(atRev, available)
	if failpoint.On(failpoint.CompactDropsTombstone) { // test-only hook: the tombstone at atRev leaves the disk
		if g := &ki.generations[gi]; !g.isEmpty() && ri == len(g.revs)-1 && gi != len(ki.generations)-1 {
			delete(available, g.revs[ri])
		}
	}
	if ri > 0 {
		g := &ki.generations[gi]
		g.revs = append([]Revision(nil), g.revs[ri:]...)
	}
	if gi > 0 {
		ki.generations = append([]generation(nil), ki.generations[gi:]...)
	}
}

// keep is compact without modifying the index, minus a tombstone exactly at
// atRev (etcd's Keep, used by HashByRev).
func (ki *keyIndex) keep(atRev int64, available map[Revision]struct{}) {
	if ki.isEmpty() {
		return
	}
	gi, ri := ki.compactPoint(atRev, available)
	g := &ki.generations[gi]
	if !g.isEmpty() && ri == len(g.revs)-1 && gi != len(ki.generations)-1 {
		delete(available, g.revs[ri])
	}
}

func (ki *keyIndex) String() string {
	var b bytes.Buffer
	for _, g := range ki.generations {
		fmt.Fprintf(&b, " {c%d v%d %v}", g.created.Main, g.ver, g.revs)
	}
	return b.String()
}
