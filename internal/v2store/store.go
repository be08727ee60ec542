// Package v2store is the v2 API's key tree: directories, files, hidden
// keys, TTLs, created/modified indexes, compare-and-swap and
// compare-and-delete, in-order keys.
//
// The tree changes only through Apply, fed with committed raft entries in
// log order, so every member builds the same tree: Apply never reads the
// clock (a request carries the proposer's times) and lists children in key
// order. Responses may use the local clock (a node's remaining ttl).
//
// Threading: Apply and Load are called by one goroutine (the apply loop);
// Get may be called concurrently from any goroutine.
package v2store

import (
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// Actions of events.
const (
	ActionGet              = "get"
	ActionSet              = "set"
	ActionCreate           = "create"
	ActionUpdate           = "update"
	ActionDelete           = "delete"
	ActionCompareAndSwap   = "compareAndSwap"
	ActionCompareAndDelete = "compareAndDelete"
	ActionExpire           = "expire"
)

// minExpire: expiration times before it mean "permanent" (a zero time
// serialised by a client, as etcd treats it).
var minExpire = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

type node struct {
	path          string
	createdIndex  uint64
	modifiedIndex uint64
	expire        time.Time // zero: permanent
	value         string
	dir           bool
	children      map[string]*node
	parent        *node
}

func (n *node) hidden() bool {
	_, name := path.Split(n.path)
	return strings.HasPrefix(name, "_")
}

func (n *node) sortedChildren() []*node {
	out := make([]*node, 0, len(n.children))
	for _, c := range n.children {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// Store is the v2 key tree.
type Store struct {
	mu    sync.RWMutex
	root  *node
	index uint64
	// ttl holds the nodes with an expiration time.
	ttl map[*node]struct{}
	// dirty collects the paths an Apply changed (for persistence).
	dirty []string
	// removed collects the paths a delete took out (for watchers).
	removed []string
	// hist is the last HistorySize events; hub the registered watchers.
	hist history
	hub  *hub
	// stats are the /v2/stats/store counters (stats.go).
	stats stats
}

// New returns an empty store.
func New() *Store {
	return &Store{root: newDir("/", 0, nil), ttl: map[*node]struct{}{}, hub: newHub()}
}

func newDir(p string, idx uint64, parent *node) *node {
	return &node{path: p, createdIndex: idx, modifiedIndex: idx, dir: true, children: map[string]*node{}, parent: parent}
}

// Index is the store's current index.
func (s *Store) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

// HasTTL reports whether any node has an expiration time, and the earliest.
func (s *Store) HasTTL() (time.Time, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var first time.Time
	for n := range s.ttl {
		if first.IsZero() || n.expire.Before(first) {
			first = n.expire
		}
	}
	return first, len(s.ttl) > 0
}

func clean(p string) string { return path.Clean(path.Join("/", p)) }

// get walks to p: a missing component gives 100 with the first missing
// path, a file on the way 104 with the file's path.
func (s *Store) get(p string) (*node, *Error) {
	n := s.root
	if p == "/" {
		return n, nil
	}
	for _, name := range strings.Split(p[1:], "/") {
		if !n.dir {
			return nil, NewError(EcodeNotDir, n.path, s.index)
		}
		c, ok := n.children[name]
		if !ok {
			return nil, NewError(EcodeKeyNotFound, path.Join(n.path, name), s.index)
		}
		n = c
	}
	return n, nil
}

// Get serves a read.
func (s *Store) Get(p string, recursive, sorted bool, now time.Time) (*Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p = clean(p)
	n, err := s.get(p)
	count(err == nil, &s.stats.getsSuccess, &s.stats.getsFail)
	if err != nil {
		return nil, err
	}
	ev := &Event{Action: ActionGet, EtcdIndex: s.index}
	ev.Node = s.extern(n, true, recursive, now)
	return ev, nil
}

// extern renders n; children are listed when list is set (one level) or
// recursive (the whole subtree), hidden ones left out.
func (s *Store) extern(n *node, list, recursive bool, now time.Time) *Node {
	e := &Node{Key: n.path, CreatedIndex: n.createdIndex, ModifiedIndex: n.modifiedIndex}
	if n == s.root {
		e.Key, e.CreatedIndex, e.ModifiedIndex = "", 0, 0
	}
	if n.dir {
		e.Dir = true
		if list || recursive {
			for _, c := range n.sortedChildren() {
				if c.hidden() {
					continue
				}
				e.Nodes = append(e.Nodes, s.extern(c, false, recursive, now))
			}
		}
	} else {
		v := n.value
		e.Value = &v
	}
	setTTL(e, n.expire, now)
	return e
}

func setTTL(e *Node, expire, now time.Time) {
	if expire.IsZero() {
		return
	}
	d := expire.Sub(now)
	ttl := d / time.Second
	if d%time.Second > 0 {
		ttl++
	}
	t := expire.UTC()
	e.Expiration, e.TTL = &t, int64(ttl)
}

// prev renders n as a prevNode: no children.
func (s *Store) prev(n *node, now time.Time) *Node { return s.extern(n, false, false, now) }

func (s *Store) markDirty(n *node) { s.dirty = append(s.dirty, n.path) }

// markTree marks n and its subtree dirty.
func (s *Store) markTree(n *node) {
	s.markDirty(n)
	for _, c := range n.children {
		s.markTree(c)
	}
}

// walkDirs walks to directory p, creating missing directories with index
// idx (as etcd does, they stay even if the operation then fails).
func (s *Store) walkDirs(p string, idx uint64) (*node, *Error) {
	n := s.root
	if p == "/" {
		return n, nil
	}
	for _, name := range strings.Split(p[1:], "/") {
		c, ok := n.children[name]
		if !ok {
			c = newDir(path.Join(n.path, name), idx, n)
			n.children[name] = c
			s.markDirty(c)
		} else if !c.dir {
			return nil, NewError(EcodeNotDir, c.path, s.index)
		}
		n = c
	}
	return n, nil
}

func (s *Store) setExpire(n *node, t time.Time) {
	if !t.IsZero() && t.Before(minExpire) {
		t = time.Time{}
	}
	n.expire = t
	if t.IsZero() {
		delete(s.ttl, n)
	} else {
		s.ttl[n] = struct{}{}
	}
}

// remove unlinks n and its subtree.
func (s *Store) remove(n *node) {
	var drop func(*node)
	drop = func(x *node) {
		delete(s.ttl, x)
		s.markDirty(x)
		for _, c := range x.children {
			drop(c)
		}
	}
	drop(n)
	if n.parent != nil {
		_, name := path.Split(n.path)
		delete(n.parent.children, name)
	}
}

// create is set (replace) and create; unique appends the in-order name.
func (s *Store) create(p string, dir bool, value string, unique, replace bool, expire time.Time, action string, now time.Time) (*Event, *Error) {
	next := s.index + 1
	if unique {
		p = path.Join(p, formatInOrder(next))
	}
	p = clean(p)
	if p == "/" {
		return nil, NewError(EcodeRootROnly, "/", s.index)
	}
	dirName, name := path.Split(p)
	d, err := s.walkDirs(clean(dirName), next)
	if err != nil {
		return nil, err
	}
	ev := &Event{Action: action}
	if old, ok := d.children[name]; ok {
		if !replace {
			return nil, NewError(EcodeNodeExist, p, s.index)
		}
		if old.dir {
			return nil, NewError(EcodeNotFile, p, s.index)
		}
		ev.PrevNode = s.prev(old, now)
		s.remove(old)
	}
	var n *node
	if dir {
		n = newDir(p, next, d)
	} else {
		n = &node{path: p, createdIndex: next, modifiedIndex: next, value: value, parent: d}
	}
	d.children[name] = n
	s.setExpire(n, expire)
	s.markDirty(n)
	s.index = next
	ev.EtcdIndex = next
	ev.Node = s.prev(n, now)
	return ev, nil
}

func formatInOrder(idx uint64) string {
	b := []byte("00000000000000000000")
	for i := len(b) - 1; idx > 0 && i >= 0; i-- {
		b[i] = byte('0' + idx%10)
		idx /= 10
	}
	return string(b)
}

func compare(n *node, prevValue string, prevIndex uint64) (string, bool) {
	vOK := prevValue == "" || n.value == prevValue
	iOK := prevIndex == 0 || n.modifiedIndex == prevIndex
	switch {
	case vOK && iOK:
		return "", true
	case !vOK && !iOK:
		return "[" + prevValue + " != " + n.value + "] [" + utoa(prevIndex) + " != " + utoa(n.modifiedIndex) + "]", false
	case !iOK:
		return "[" + utoa(prevIndex) + " != " + utoa(n.modifiedIndex) + "]", false
	}
	return "[" + prevValue + " != " + n.value + "]", false
}

func utoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}
