package v2store

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
)

// HistorySize is how many events the store keeps for watches that start
// in the past (etcd 3.4 keeps the last 1000 across all keys).
const HistorySize = 1000

// eventKeyPrefix starts the persisted record key of a history event:
// "e/" + the 20-digit index, so records sort by index after the node
// paths (which start with "/") and before IndexKey.
const eventKeyPrefix = "e/"

func eventKey(idx uint64) string { return eventKeyPrefix + formatInOrder(idx) }

// histEvent is a stored event. A refresh (a TTL change that notifies no
// watcher) takes its index and its place in the history but is never
// returned to a watch, as in etcd.
type histEvent struct {
	Refresh bool `json:"refresh,omitempty"`
	*Event
}

func (h histEvent) index() uint64 { return h.Node.ModifiedIndex }

// history is a ring of the last HistorySize events, oldest first. It is
// changed under the store's write lock and read under its read lock.
type history struct {
	ring  []histEvent
	front int // position of the oldest event
	n     int
}

func (h *history) at(i int) histEvent { return h.ring[(h.front+i)%len(h.ring)] }

// add appends e and returns the index of the event it pushed out (0: none).
func (h *history) add(e histEvent) (evicted uint64) {
	if h.ring == nil {
		h.ring = make([]histEvent, HistorySize)
	}
	if h.n == len(h.ring) {
		evicted = h.ring[h.front].index()
		h.ring[h.front] = e
		h.front = (h.front + 1) % len(h.ring)
		return evicted
	}
	h.ring[(h.front+h.n)%len(h.ring)] = e
	h.n++
	return 0
}

// get returns the stored event with index idx.
func (h *history) get(idx uint64) (histEvent, bool) {
	i := sort.Search(h.n, func(i int) bool { return h.at(i).index() >= idx })
	if i < h.n && h.at(i).index() == idx {
		return h.at(i), true
	}
	return histEvent{}, false
}

// scan returns the stored events at or after since that a watch of key
// would have been woken by, oldest first, at most one unless all is set.
// storeIndex is the store's index; an empty history starts after it (after
// a start on data older than the history's persistence, nothing is known
// about the past). A since before the history's start is etcd's error 401.
func (h *history) scan(key string, recursive, all bool, since, storeIndex uint64) ([]*Event, *Error) {
	start := storeIndex + 1
	if h.n > 0 {
		start = h.at(0).index()
	}
	if since < start {
		return nil, NewError(EcodeEventIndexGone,
			fmt.Sprintf("the requested history has been cleared [%d/%d]", start, since), storeIndex)
	}
	var out []*Event
	for i := sort.Search(h.n, func(i int) bool { return h.at(i).index() >= since }); i < h.n; i++ {
		e := h.at(i)
		if e.Refresh || !historyMatch(e.Event, key, recursive) {
			continue
		}
		out = append(out, e.Event)
		if !all {
			break
		}
	}
	return out, nil
}

// historyMatch is etcd's rule for a watch answered from the history: the
// same key; with recursive, a key below it; or the delete or expiry of a
// directory whose path is a prefix of the key (a plain string prefix, so a
// watch of /foobar also sees /foo go, as in etcd). Unlike live
// notification, hidden keys are not filtered (etcd's history does not).
func historyMatch(e *Event, key string, recursive bool) bool {
	if e.Node.Key == key {
		return true
	}
	if recursive {
		dir := key
		if !strings.HasSuffix(dir, "/") {
			dir += "/"
		}
		if strings.HasPrefix(e.Node.Key, dir) {
			return true
		}
	}
	if (e.Action == ActionDelete || e.Action == ActionExpire) && e.PrevNode != nil && e.PrevNode.Dir {
		return strings.HasPrefix(key, e.PrevNode.Key)
	}
	return false
}

// isHidden reports whether the part of keyPath below watchPath has a
// hidden component; a watch on an ancestor does not see such events live.
func isHidden(watchPath, keyPath string) bool {
	if len(watchPath) > len(keyPath) {
		return false
	}
	return strings.Contains(path.Clean("/"+keyPath[len(watchPath):]), "/_")
}

// eventRecord is the persisted form of a history event.
func eventRecord(e histEvent) []byte {
	b, _ := json.Marshal(e)
	return b
}

// loadEvent adds a persisted history event during Load.
func (h *history) load(k, v []byte) error {
	if _, err := strconv.ParseUint(string(k[len(eventKeyPrefix):]), 10, 64); err != nil {
		return fmt.Errorf("v2 history record %q: %w", k, err)
	}
	e := histEvent{Event: &Event{}}
	if err := json.Unmarshal(v, &e); err != nil {
		return fmt.Errorf("v2 history record %q: %w", k, err)
	}
	if e.Node == nil {
		return fmt.Errorf("v2 history record %q has no node", k)
	}
	e.EtcdIndex = e.Node.ModifiedIndex
	h.add(e)
	return nil
}
