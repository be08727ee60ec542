package watch

import "math/rand/v2"

// span is a key range [key, end); inf means no upper bound (etcd's range
// end "\x00").
type span struct {
	key, end string
	inf      bool
}

// contains reports whether k is in the span.
func (s span) contains(k string) bool {
	return s.key <= k && (s.inf || k < s.end)
}

// less orders spans by key, then end (an unbounded end last).
func (s span) less(o span) bool {
	switch {
	case s.key != o.key:
		return s.key < o.key
	case s.inf != o.inf:
		return o.inf
	}
	return s.end < o.end
}

// spanTree is an interval index of the groups watching ranges: a treap
// ordered by span, each node carrying the largest end in its subtree, so
// that the groups containing a key are found in O(log n + matches) however
// many other ranges are watched. Not safe for concurrent use (the hub's
// mutex protects it).
type spanTree struct {
	root *spanNode
	n    int
}

type spanNode struct {
	s           span
	g           *group
	prio        uint32
	left, right *spanNode
	// maxEnd/maxInf: the largest end of the subtree.
	// Invariant: for every node x below, !x.s.inf implies maxInf ||
	// x.s.end <= maxEnd, and x.s.inf implies maxInf.
	maxEnd string
	maxInf bool
}

func (n *spanNode) update() {
	n.maxEnd, n.maxInf = n.s.end, n.s.inf
	for _, c := range [2]*spanNode{n.left, n.right} {
		if c == nil {
			continue
		}
		if c.maxInf {
			n.maxInf = true
		} else if c.maxEnd > n.maxEnd {
			n.maxEnd = c.maxEnd
		}
	}
}

// split divides t into the nodes ordered before s and the rest.
func split(t *spanNode, s span) (l, r *spanNode) {
	if t == nil {
		return nil, nil
	}
	if t.s.less(s) {
		t.right, r = split(t.right, s)
		t.update()
		return t, r
	}
	l, t.left = split(t.left, s)
	t.update()
	return l, t
}

// merge joins l and r, every node of l ordered before every node of r.
func merge(l, r *spanNode) *spanNode {
	switch {
	case l == nil:
		return r
	case r == nil:
		return l
	case l.prio > r.prio:
		l.right = merge(l.right, r)
		l.update()
		return l
	default:
		r.left = merge(l, r.left)
		r.update()
		return r
	}
}

// get returns the group of span s, or nil.
func (t *spanTree) get(s span) *group {
	n := t.root
	for n != nil {
		switch {
		case s.less(n.s):
			n = n.left
		case n.s.less(s):
			n = n.right
		default:
			return n.g
		}
	}
	return nil
}

// insert adds g under s, which must not be in the tree.
func (t *spanTree) insert(s span, g *group) {
	n := &spanNode{s: s, g: g, prio: rand.Uint32()}
	n.update()
	l, r := split(t.root, s)
	t.root = merge(merge(l, n), r)
	t.n++
}

// delete removes span s (no-op when absent).
func (t *spanTree) delete(s span) {
	l, r := split(t.root, s)
	// r starts with s when present: drop its leftmost node.
	if r != nil {
		var drop func(n *spanNode) (*spanNode, bool)
		drop = func(n *spanNode) (*spanNode, bool) {
			if n.left == nil {
				if n.s == s {
					return n.right, true
				}
				return n, false
			}
			var ok bool
			n.left, ok = drop(n.left)
			n.update()
			return n, ok
		}
		var ok bool
		if r, ok = drop(r); ok {
			t.n--
		}
	}
	t.root = merge(l, r)
}

// stab calls f for every group whose span contains k.
func (t *spanTree) stab(k string, f func(*group)) {
	var visit func(n *spanNode)
	visit = func(n *spanNode) {
		for n != nil {
			if !n.maxInf && k >= n.maxEnd {
				return // nothing below ends after k
			}
			visit(n.left)
			if n.s.key > k {
				return // n and everything right of it start after k
			}
			if n.s.contains(k) {
				f(n.g)
			}
			n = n.right
		}
	}
	visit(t.root)
}
