package v2store

import (
	"encoding/json"
	"fmt"
	"time"
)

// ImportNode is a node of another v2 store (etcd 3.4's, read by cairnctl
// backup), with its indexes and absolute expiration kept.
type ImportNode struct {
	Path     string
	Dir      bool
	Value    string
	Created  uint64
	Modified uint64
	Expire   time.Time // zero: permanent
}

// ImportEvent is an event of another store's watch history; a refresh
// keeps its place but is never returned to a watch.
type ImportEvent struct {
	*Event
	Refresh bool `json:"refresh,omitempty"`
}

// Import replaces the tree with nodes (parents before children), the
// history with events (oldest first, at most HistorySize kept; a watch from
// before the first gets 401) and sets the store index. Not for a serving
// store (watchers are not told).
func (s *Store) Import(nodes []ImportNode, events []ImportEvent, index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.root, s.index, s.ttl, s.hist = newDir("/", 0, nil), index, map[*node]struct{}{}, history{}
	var last uint64
	for _, ie := range events {
		e := ie.Event
		if e == nil || e.Node == nil || e.Node.ModifiedIndex <= last || e.Node.ModifiedIndex > index {
			return fmt.Errorf("v2 history event %+v: not after %d and at most the store index %d", e, last, index)
		}
		last = e.Node.ModifiedIndex
		e.EtcdIndex = last
		s.hist.add(histEvent{Refresh: ie.Refresh, Event: e})
	}
	for _, in := range nodes {
		p := clean(in.Path)
		if p == "/" || p != in.Path {
			return fmt.Errorf("v2 node %q: not a clean key path", in.Path)
		}
		dirName, name := splitParent(p)
		parent, err := s.get(dirName)
		if err != nil || !parent.dir {
			return fmt.Errorf("v2 node %q: its parent is not a directory before it", p)
		}
		if _, dup := parent.children[name]; dup {
			return fmt.Errorf("v2 node %q twice", p)
		}
		n := &node{path: p, createdIndex: in.Created, modifiedIndex: in.Modified, value: in.Value, dir: in.Dir, parent: parent}
		if in.Dir {
			n.children = map[string]*node{}
		}
		parent.children[name] = n
		s.setExpire(n, in.Expire)
	}
	return nil
}

// SkipIndex advances the store index by one without changing the tree: a
// write the source store counted that this tree does not hold (etcd 3.4's
// membership records).
func (s *Store) SkipIndex() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index++
}

// Records calls fn with every persisted record of the store (the bucket's
// whole content): the nodes, parents before children, the history and the
// store index.
func (s *Store) Records(fn func(k, v []byte) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var walk func(n *node) error
	walk = func(n *node) error {
		if n != s.root {
			if err := fn([]byte(n.path), nodeRecord(n)); err != nil {
				return err
			}
		}
		for _, c := range n.sortedChildren() {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(s.root); err != nil {
		return err
	}
	for i := 0; i < s.hist.n; i++ {
		e := s.hist.at(i)
		if err := fn([]byte(eventKey(e.index())), eventRecord(e)); err != nil {
			return err
		}
	}
	b, _ := json.Marshal(s.index)
	return fn([]byte(IndexKey), b)
}
