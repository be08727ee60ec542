package v2store

import (
	"strings"
	"sync"
)

// StreamBuffer is how many undelivered events a stream watcher may hold;
// one that falls further behind is dropped (its channel closed), so a
// client that stops reading costs bounded memory. etcd 3.4 drops at 100;
// cairn allows the history's depth minus a margin, so a dropped client can
// usually resume from its last index.
const StreamBuffer = HistorySize / 2 // 500

// Watcher is one v2 watch. Its events arrive on Events; the channel is
// closed when the watcher is dropped (a stream too far behind, a snapshot
// replacing the tree, Close). A watch that is not a stream receives one
// event and is then no longer registered.
type Watcher struct {
	key       string
	recursive bool
	stream    bool
	since     uint64 // events below it do not wake the watcher
	start     uint64 // the store index when the watch began
	ch        chan *Event
	hub       *hub
	// Guarded by hub.mu.
	removed bool
	last    uint64 // index of the last event sent, so one event is sent once
}

// Events delivers the watcher's events.
func (w *Watcher) Events() <-chan *Event { return w.ch }

// StartIndex is the store index when the watch began (X-Etcd-Index).
func (w *Watcher) StartIndex() uint64 { return w.start }

// Remove unregisters the watcher; the HTTP handler calls it when it ends.
func (w *Watcher) Remove() {
	if w.hub == nil {
		return
	}
	w.hub.mu.Lock()
	defer w.hub.mu.Unlock()
	w.hub.unregister(w)
}

// hub keeps the registered watchers by watched path.
type hub struct {
	mu       sync.Mutex
	watchers map[string]map[*Watcher]struct{}
	count    int
}

func newHub() *hub { return &hub{watchers: map[string]map[*Watcher]struct{}{}} }

func (h *hub) register(w *Watcher) {
	ws := h.watchers[w.key]
	if ws == nil {
		ws = map[*Watcher]struct{}{}
		h.watchers[w.key] = ws
	}
	ws[w] = struct{}{}
	h.count++
}

// unregister removes w (hub.mu held); idempotent.
func (h *hub) unregister(w *Watcher) {
	if w.removed {
		return
	}
	w.removed = true
	if ws := h.watchers[w.key]; ws != nil {
		if _, ok := ws[w]; ok {
			delete(ws, w)
			h.count--
		}
		if len(ws) == 0 {
			delete(h.watchers, w.key)
		}
	}
}

// drop unregisters w and closes its channel (hub.mu held).
func (h *hub) drop(w *Watcher) {
	if w.removed {
		return
	}
	h.unregister(w)
	close(w.ch)
}

// closeAll drops every watcher.
func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ws := range h.watchers {
		for w := range ws {
			h.drop(w)
		}
	}
}

// Watchers is the number of registered watchers.
func (h *hub) Watchers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

// notify wakes the watchers of event e, as etcd does: first those on the
// removed paths (a deleted or expired directory's subtree, or the deleted
// key), which are woken whatever they watch; then those on e's key and its
// ancestors, an ancestor's only if it watches recursively and no path
// component between it and the key is hidden. A watcher is sent e at most
// once (etcd 3.4 sends a stream watcher on a deleted key the event twice).
func (h *hub) notify(e *Event, removed []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.count == 0 {
		return
	}
	for _, p := range removed {
		h.notifyPath(e, p, true)
	}
	key := e.Node.Key
	h.notifyPath(e, "/", false)
	if key != "/" {
		cur := ""
		for _, seg := range strings.Split(key[1:], "/") {
			cur = cur + "/" + seg
			h.notifyPath(e, cur, false)
		}
	}
}

func (h *hub) notifyPath(e *Event, p string, deleted bool) {
	ws := h.watchers[p]
	if len(ws) == 0 {
		return
	}
	original := e.Node.Key == p
	if !original && isHidden(p, e.Node.Key) {
		return
	}
	idx := e.Node.ModifiedIndex
	for w := range ws {
		if !(w.recursive || original || deleted) || idx < w.since || w.last == idx {
			continue
		}
		w.last = idx
		select {
		case w.ch <- e:
			if !w.stream {
				h.unregister(w)
			}
		default:
			h.drop(w) // a stream too far behind
		}
	}
}

// Watch starts a watch of key from index since (0: the next index). An
// event already in the history is delivered at once: for a plain watch the
// first match, for a stream every match, after which it goes on live
// (etcd 3.4 sends a stream only the first past match and then nothing). A
// since older than the history gives error 401.
func (s *Store) Watch(key string, recursive, stream bool, since uint64) (*Watcher, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	key = clean(key)
	if since == 0 {
		since = s.index + 1
	}
	w := &Watcher{key: key, recursive: recursive, stream: stream, since: since, start: s.index, hub: s.hub}
	past, err := s.hist.scan(key, recursive, stream, since, s.index)
	if err != nil {
		return nil, err
	}
	size := 1
	if stream {
		size = StreamBuffer + len(past)
	}
	w.ch = make(chan *Event, size)
	for _, e := range past {
		w.ch <- e
		w.last = e.Node.ModifiedIndex
	}
	if len(past) > 0 {
		if !stream {
			w.removed = true
			return w, nil
		}
		// Later events only: the history delivered the rest.
		w.since = w.last + 1
	}
	s.hub.mu.Lock()
	s.hub.register(w)
	s.hub.mu.Unlock()
	return w, nil
}

// Watchers is the number of registered watchers.
func (s *Store) Watchers() int { return s.hub.Watchers() }

// CloseWatchers drops every watcher (their clients see the stream end).
func (s *Store) CloseWatchers() { s.hub.closeAll() }

// publish records a successful event in the history (persisted through the
// dirty list) and, unless it is a refresh, wakes its watchers. removed are
// the paths the event took out of the tree. Store write lock held.
func (s *Store) publish(e *Event, removed []string, refresh bool) {
	idx := e.Node.ModifiedIndex
	s.dirty = append(s.dirty, eventKey(idx))
	if old := s.hist.add(histEvent{Refresh: refresh, Event: e}); old != 0 {
		s.dirty = append(s.dirty, eventKey(old))
	}
	if !refresh {
		s.hub.notify(e, removed)
	}
}

// removedPaths lists the paths of n's subtree, children before parents.
func removedPaths(n *node, out []string) []string {
	for _, c := range n.children {
		out = removedPaths(c, out)
	}
	return append(out, n.path)
}
