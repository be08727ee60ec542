package watch

import (
	"errors"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairnkv/cairn/internal/mvcc"
)

// watcher is one watch of a stream.
type watcher struct {
	id int64
	s  *Stream
	g  *group // the watchers of the same range
	// startRev is the requested start revision (0: from now).
	startRev int64
	// gidx is the position in g.watchers (see group.mu).
	gidx int32
	// Stream goroutine only: the position in s.order.
	idx int32
	// Options of the creation.
	noPut, noDelete            bool
	prevKV, progress, fragment bool
	// sentSinceTick: events sent since the last progress tick (stream
	// goroutine only).
	sentSinceTick bool

	// mu protects cursor, nextRev and gone against the hub (sweeper,
	// Restore, leave); the stream goroutine holds it only briefly, never
	// while sending.
	mu sync.Mutex
	// cursor is the last entry of the group's log the watcher consumed;
	// nil while it catches up from the backend (unsynced).
	cursor *entry
	// nextRev is the first revision whose events the watcher has not sent.
	// Invariant: every matching event below nextRev (and at or above the
	// start revision) was sent, or is in the response being sent; while
	// synced, every entry after cursor has rev >= nextRev or is skipped as
	// before the start.
	nextRev int64
	// gone is set when the watcher left the hub.
	gone bool
}

func (w *watcher) contains(key []byte) bool { return w.g.contains(key) }

func (w *watcher) filtered(ev *mvccpb.Event) bool {
	return (w.noPut && ev.Type == mvccpb.PUT) || (w.noDelete && ev.Type == mvccpb.DELETE)
}

// through is the newest revision up to which w has sent every event, given
// that every entry up to rev is linked (rev loaded from the hub before).
func (w *watcher) through(rev int64) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cursor == nil {
		return w.nextRev - 1
	}
	if n := w.cursor.next.Load(); n != nil {
		return min(rev, n.rev-1)
	}
	return max(rev, w.nextRev-1)
}

// settle advances nextRev of a synced watcher about to lose its cursor as
// far as its log proves it has sent everything: to the first pending entry,
// or past rev (loaded from the hub before) when none is pending. Without
// it a watcher idle for long would catch up from its last event's revision
// and could be cancelled by a compaction it had nothing to lose from.
// Caller holds w.mu; w.cursor != nil.
func (w *watcher) settle(rev int64) {
	if n := w.cursor.next.Load(); n != nil {
		w.nextRev = max(w.nextRev, n.rev)
	} else {
		w.nextRev = max(w.nextRev, rev+1)
	}
}

// maxResponseBytes cuts a response of a watcher that is behind between
// revisions once it holds this many event bytes.
const maxResponseBytes = 1 << 20

// serve gives w one turn: a synced watcher sends (at most one response of)
// its pending entries, an unsynced one catches up by one backend batch.
// compacted reports that w was cancelled for compaction (the caller removes
// it).
func (s *Stream) serve(w *watcher) (did, compacted bool, err error) {
	w.mu.Lock()
	c := w.cursor
	if c == nil {
		w.mu.Unlock()
		return s.catchUp(w)
	}
	e := c.next.Load()
	if e == nil {
		w.mu.Unlock()
		return false, false, nil
	}
	var picked []*event
	var rev int64
	revs, size := 0, int64(0)
	for ; e != nil && revs < s.h.cfg.BatchRevisions && size < maxResponseBytes; e = e.next.Load() {
		c = e
		if e.rev < w.nextRev {
			continue // before a future start revision
		}
		w.nextRev = e.rev + 1
		rev = e.rev
		revs++
		for _, ev := range e.evs {
			if !w.filtered(&ev.ev) {
				picked = append(picked, ev)
				size += ev.size
			}
		}
	}
	w.cursor = c
	w.mu.Unlock()
	if len(picked) == 0 {
		return true, false, nil
	}
	return true, false, s.sendPicked(w, picked, rev)
}

// catchUp sends w the next batch of its history from the backend; near the
// head it joins the group's log.
func (s *Stream) catchUp(w *watcher) (did, compacted bool, err error) {
	h := s.h
	w.mu.Lock()
	from := w.nextRev
	w.mu.Unlock()
	batch := int64(h.cfg.BatchRevisions)
	if head := h.Rev(); from+batch <= head {
		to := from + batch - 1
		evs, crev, err := s.history(w, from, to)
		if crev != 0 {
			return true, true, s.compacted(w, crev)
		}
		if err != nil {
			return false, false, err
		}
		w.mu.Lock()
		w.nextRev = to + 1
		w.mu.Unlock()
		if len(evs) == 0 {
			return true, false, nil
		}
		return true, false, s.sendEvents(w, evs, to)
	}
	tail, head, epoch := h.tailAt(w.g)
	var evs []*mvccpb.Event
	if from <= head {
		var crev int64
		evs, crev, err = s.history(w, from, head)
		if crev != 0 {
			return true, true, s.compacted(w, crev)
		}
		if err != nil {
			return false, false, err
		}
	}
	w.mu.Lock()
	w.nextRev = max(from, head+1)
	if h.epoch.Load() == epoch && !w.gone {
		w.cursor = tail
		h.slow.Add(-1)
	}
	w.mu.Unlock()
	if len(evs) == 0 {
		return true, false, nil
	}
	return true, false, s.sendEvents(w, evs, head)
}

// errHistory marks a backend read that failed for another reason than
// compaction; the stream ends (the client reconnects and resumes).
var errHistory = errors.New("watch: reading history")

// history reads w's events of revisions from..to from the backend, with
// their previous values when w wants them. crev is the compaction revision
// when from is compacted.
func (s *Stream) history(w *watcher, from, to int64) (evs []*mvccpb.Event, crev int64, err error) {
	r := s.h.st.Read()
	defer r.End()
	err = r.Events(from, to, w.contains, func(ev mvccpb.Event) bool {
		if !w.filtered(&ev) {
			evs = append(evs, &ev)
		}
		return true
	})
	if errors.Is(err, mvcc.ErrCompacted) {
		return nil, max(r.FirstRev(), 1), nil
	}
	if err != nil {
		return nil, 0, errors.Join(errHistory, err)
	}
	if w.prevKV {
		for _, ev := range evs {
			if isCreate(ev) {
				continue
			}
			res, err := r.Range(ev.Kv.Key, nil, mvcc.RangeOptions{Rev: ev.Kv.ModRevision - 1, Limit: 1})
			if err == nil && len(res.KVs) > 0 {
				ev.PrevKv = &res.KVs[0]
			}
		}
	}
	return evs, 0, nil
}

// compacted tells the client that w's history is compacted, as etcd: a
// cancellation carrying the compaction revision, in a header without a
// revision.
func (s *Stream) compacted(w *watcher, crev int64) error {
	return s.send(&pb.WatchResponse{Header: s.header(0), WatchId: w.id, Canceled: true, CompactRevision: crev})
}
