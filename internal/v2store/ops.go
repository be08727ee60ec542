package v2store

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Event is a v2 response: its JSON is the body.
type Event struct {
	Action   string `json:"action"`
	Node     *Node  `json:"node,omitempty"`
	PrevNode *Node  `json:"prevNode,omitempty"`
	// EtcdIndex is the store index the X-Etcd-Index header reports.
	EtcdIndex uint64 `json:"-"`
}

// Created reports whether the event made a new node (HTTP 201).
func (e *Event) Created() bool {
	return e.Action == ActionCreate || (e.Action == ActionSet && e.PrevNode == nil)
}

// Node is a node as v2 clients see it; field order and omitempty are etcd's.
type Node struct {
	Key           string     `json:"key,omitempty"`
	Value         *string    `json:"value,omitempty"`
	Dir           bool       `json:"dir,omitempty"`
	Expiration    *time.Time `json:"expiration,omitempty"`
	TTL           int64      `json:"ttl,omitempty"`
	Nodes         []*Node    `json:"nodes,omitempty"`
	ModifiedIndex uint64     `json:"modifiedIndex,omitempty"`
	CreatedIndex  uint64     `json:"createdIndex,omitempty"`
}

// Operations a Request carries.
const (
	OpSet    = "set"    // PUT without conditions
	OpCreate = "create" // PUT prevExist=false; POST with Unique
	OpUpdate = "update" // PUT prevExist=true without prevValue/prevIndex
	OpCAS    = "cas"
	OpDelete = "delete"
	OpCAD    = "cad"
	OpExpire = "expire" // the leader's expiry sweep at Time
)

// Request is one v2 write as it travels through raft. Times are chosen by
// the proposer, so applying it is deterministic.
type Request struct {
	Op        string `json:"op"`
	Path      string `json:"path,omitempty"`
	Value     string `json:"value,omitempty"`
	Dir       bool   `json:"dir,omitempty"`
	Unique    bool   `json:"unique,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
	PrevValue string `json:"prevValue,omitempty"`
	PrevIndex uint64 `json:"prevIndex,omitempty"`
	Refresh   bool   `json:"refresh,omitempty"`
	// Expire is the expiration in Unix nanoseconds (0: permanent).
	Expire int64 `json:"expire,omitempty"`
	// Time is the proposer's clock in Unix nanoseconds: the cut-off of an
	// expiry sweep.
	Time int64 `json:"time,omitempty"`
}

func unixNano(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v)
}

// Apply executes a committed request. The error is an *Error for a v2
// failure (the tree is unchanged apart from directories a write created on
// its way, as in etcd). Changed reports the paths whose persisted records
// must be rewritten (Record) or deleted (nil record).
func (s *Store) Apply(r *Request, now time.Time) (*Event, []string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirty, s.removed = s.dirty[:0], s.removed[:0]
	ev, err := s.apply(r, now)
	s.stats.countApply(r.Op, err == nil)
	if err == nil && r.Op != OpExpire {
		refresh := r.Refresh && (r.Op == OpSet || r.Op == OpUpdate || r.Op == OpCAS)
		s.publish(ev, s.removed, refresh)
	}
	changed := append([]string(nil), s.dirty...)
	if err != nil {
		return nil, changed, err
	}
	return ev, changed, nil
}

func (s *Store) apply(r *Request, now time.Time) (*Event, *Error) {
	expire := unixNano(r.Expire)
	p := clean(r.Path)
	switch r.Op {
	case OpSet:
		n, gerr := s.get(p)
		if gerr != nil && gerr.ErrorCode != EcodeKeyNotFound {
			return nil, gerr
		}
		value := r.Value
		if r.Refresh {
			if gerr != nil {
				return nil, gerr
			}
			value = n.value
		}
		var prev *Node
		if gerr == nil {
			prev = s.extern(n, true, false, now)
		}
		ev, err := s.create(p, r.Dir, value, false, true, expire, ActionSet, now)
		if err != nil {
			return nil, err
		}
		ev.PrevNode = prev
		return ev, nil
	case OpCreate:
		return s.create(p, r.Dir, r.Value, r.Unique, false, expire, ActionCreate, now)
	case OpUpdate, OpCAS:
		if p == "/" {
			return nil, NewError(EcodeRootROnly, "/", s.index)
		}
		n, err := s.get(p)
		if err != nil {
			return nil, err
		}
		action := ActionUpdate
		value := r.Value
		if r.Op == OpCAS {
			action = ActionCompareAndSwap
			if n.dir {
				return nil, NewError(EcodeNotFile, p, s.index)
			}
			if cause, ok := compare(n, r.PrevValue, r.PrevIndex); !ok {
				return nil, NewError(EcodeTestFailed, cause, s.index)
			}
		} else if n.dir && value != "" {
			return nil, NewError(EcodeNotFile, p, s.index)
		}
		if r.Refresh {
			value = n.value
		}
		next := s.index + 1
		ev := &Event{Action: action, EtcdIndex: next, PrevNode: s.prev(n, now)}
		if !n.dir {
			n.value, n.modifiedIndex = value, next
		}
		s.setExpire(n, expire)
		s.markDirty(n)
		s.index = next
		ev.Node = &Node{Key: p, CreatedIndex: n.createdIndex, ModifiedIndex: next}
		if n.dir {
			ev.Node.Dir = true
		} else {
			ev.Node.Value = &value
		}
		setTTL(ev.Node, n.expire, now)
		return ev, nil
	case OpDelete, OpCAD:
		if p == "/" {
			return nil, NewError(EcodeRootROnly, "/", s.index)
		}
		n, err := s.get(p)
		if err != nil {
			return nil, err
		}
		action := ActionDelete
		if r.Op == OpCAD {
			action = ActionCompareAndDelete
			if n.dir {
				return nil, NewError(EcodeNotFile, p, s.index)
			}
			if cause, ok := compare(n, r.PrevValue, r.PrevIndex); !ok {
				return nil, NewError(EcodeTestFailed, cause, s.index)
			}
		} else if n.dir {
			dir := r.Dir || r.Recursive
			if !dir {
				return nil, NewError(EcodeNotFile, p, s.index)
			}
			if len(n.children) > 0 && !r.Recursive {
				return nil, NewError(EcodeDirNotEmpty, p, s.index)
			}
		}
		next := s.index + 1
		ev := &Event{Action: action, EtcdIndex: next, PrevNode: s.prev(n, now),
			Node: &Node{Key: p, Dir: n.dir, CreatedIndex: n.createdIndex, ModifiedIndex: next}}
		s.removed = removedPaths(n, s.removed)
		s.remove(n)
		s.index = next
		return ev, nil
	case OpExpire:
		s.expire(unixNano(r.Time), now)
		// The sweep's own result; its events went to the history one by one.
		return &Event{Action: ActionExpire, EtcdIndex: s.index}, nil
	}
	return nil, NewError(EcodeInvalidField, "unknown v2 operation "+r.Op, s.index)
}

// expire removes every node whose expiration is at or before cutoff, the
// earliest first; each removal is one event and one index.
func (s *Store) expire(cutoff, now time.Time) {
	for {
		var first *node
		for n := range s.ttl {
			if n.expire.After(cutoff) {
				continue
			}
			if first == nil || n.expire.Before(first.expire) || (n.expire.Equal(first.expire) && n.path < first.path) {
				first = n
			}
		}
		if first == nil {
			return
		}
		s.index++
		s.stats.expireCount.Add(1)
		ev := &Event{Action: ActionExpire, EtcdIndex: s.index, PrevNode: s.prev(first, now),
			Node: &Node{Key: first.path, Dir: first.dir, CreatedIndex: first.createdIndex, ModifiedIndex: s.index}}
		removed := removedPaths(first, s.removed[:0])
		s.remove(first)
		s.publish(ev, removed, false)
	}
}

// record is a node as persisted: one per path, parents before children in
// key order.
type record struct {
	Dir      bool   `json:"d,omitempty"`
	Value    string `json:"v,omitempty"`
	Created  uint64 `json:"c"`
	Modified uint64 `json:"m"`
	Expire   int64  `json:"e,omitempty"`
}

// IndexKey is the persisted record key of the store index; node paths all
// start with "/".
const IndexKey = "index"

// Record returns the persisted form of path p, or nil if p no longer
// exists. Apply loop only.
func (s *Store) Record(p string) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p == IndexKey {
		b, _ := json.Marshal(s.index)
		return b
	}
	if strings.HasPrefix(p, eventKeyPrefix) {
		idx, err := strconv.ParseUint(p[len(eventKeyPrefix):], 10, 64)
		if err != nil {
			return nil
		}
		if e, ok := s.hist.get(idx); ok {
			return eventRecord(e)
		}
		return nil
	}
	n, err := s.get(p)
	if err != nil || n.path != p {
		return nil
	}
	return nodeRecord(n)
}

// nodeRecord is n's persisted form.
func nodeRecord(n *node) []byte {
	r := record{Dir: n.dir, Value: n.value, Created: n.createdIndex, Modified: n.modifiedIndex}
	if !n.expire.IsZero() {
		r.Expire = n.expire.UnixNano()
	}
	b, _ := json.Marshal(r)
	return b
}

// Load replaces the tree with persisted records, given in key order.
func (s *Store) Load(each func(fn func(k, v []byte) bool)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.root, s.index, s.ttl, s.hist = newDir("/", 0, nil), 0, map[*node]struct{}{}, history{}
	// A new tree (a leader's snapshot): watchers cannot tell what they
	// missed, so their streams end and clients watch again from their
	// index, which the loaded history answers.
	s.hub.closeAll()
	var err error
	each(func(k, v []byte) bool {
		if string(k) == IndexKey {
			err = json.Unmarshal(v, &s.index)
			return err == nil
		}
		if bytes.HasPrefix(k, []byte(eventKeyPrefix)) {
			err = s.hist.load(k, v)
			return err == nil
		}
		var r record
		if err = json.Unmarshal(v, &r); err != nil {
			return false
		}
		p := string(k)
		dirName, name := splitParent(p)
		parent, gerr := s.get(dirName)
		if gerr != nil || !parent.dir {
			return true // an orphan cannot happen; skip rather than fail
		}
		n := &node{path: p, createdIndex: r.Created, modifiedIndex: r.Modified, value: r.Value, dir: r.Dir, parent: parent}
		if r.Dir {
			n.children = map[string]*node{}
		}
		parent.children[name] = n
		s.setExpire(n, unixNano(r.Expire))
		return true
	})
	return err
}

func splitParent(p string) (string, string) {
	i := len(p) - 1
	for i > 0 && p[i] != '/' {
		i--
	}
	if i == 0 {
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}
