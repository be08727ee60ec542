package watch

import (
	"bytes"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairnkv/cairn/internal/failpoint"
)

// InvalidID is the watch ID of responses that concern no single watcher:
// refused creations and stream-wide progress notifications (clientv3's
// InvalidWatchID).
const InvalidID = -1

// Stream is one client watch stream: the watchers it created and the
// goroutine (Run) that sends their responses. Create, Cancel,
// RequestProgress and Close may be called from any goroutine; they queue
// the request for Run, which handles requests and sends responses in the
// order the requests came.
type Stream struct {
	h      *Hub
	send   func(Message) error
	header func(rev int64) *pb.ResponseHeader

	wake     chan struct{}
	stopc    chan struct{}
	stopOnce sync.Once

	mu   sync.Mutex
	ctrl []request

	// The rest belongs to Run's goroutine.
	watchers map[int64]*watcher
	order    []*watcher
	nextID   int64
	members  map[*group]*member
	// progressAll is set while a stream-wide progress request waits for
	// every watcher to have sent everything up to progressRev.
	progressAll bool
	progressRev int64
	// progressSeen is the hub revision tryProgressAll last looked at.
	progressSeen int64
	// revWaiting: s is in the hub's revWaiters. Protected by Hub.mu.
	revWaiting bool
	// sent counts the responses of the current pass.
	sent int
	// turn is the stream's hold on a send slot (see sendGate).
	turn *turn
}

// waitPerResponse is how much longer a busy stream may wait between passes
// per response its last pass sent (up to PassInterval).
const waitPerResponse = 500 * time.Microsecond

type requestKind int

const (
	reqCreate requestKind = iota
	reqCancel
	reqProgress
)

type request struct {
	kind   requestKind
	create *pb.WatchCreateRequest
	id     int64
}

// NewStream returns a stream that sends with send (only ever from Run's
// goroutine) and stamps responses with header(rev). Run must be called.
func (h *Hub) NewStream(send func(Message) error, header func(rev int64) *pb.ResponseHeader) *Stream {
	h.streams.Add(1)
	stopc := make(chan struct{})
	return &Stream{h: h, send: send, header: header, wake: make(chan struct{}, 1), stopc: stopc,
		watchers: make(map[int64]*watcher), members: make(map[*group]*member), turn: newTurn(h.gate, stopc)}
}

func (s *Stream) enqueue(r request) {
	s.mu.Lock()
	s.ctrl = append(s.ctrl, r)
	s.mu.Unlock()
	s.wakeUp()
}

// Create queues a watch creation. The request must not be modified
// afterwards.
func (s *Stream) Create(r *pb.WatchCreateRequest) { s.enqueue(request{kind: reqCreate, create: r}) }

// Cancel queues the cancellation of watch id.
func (s *Stream) Cancel(id int64) { s.enqueue(request{kind: reqCancel, id: id}) }

// RequestProgress queues a stream-wide progress request: once every
// watcher has sent everything up to the current revision (or later), a
// response with watch ID -1 carries that revision.
func (s *Stream) RequestProgress() { s.enqueue(request{kind: reqProgress}) }

// Close stops Run, which then removes every watcher. Any goroutine; safe
// to call twice.
func (s *Stream) Close() { s.stopOnce.Do(func() { close(s.stopc) }) }

func (s *Stream) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run serves the stream until Close or a send error (returned). Call once.
func (s *Stream) Run() error {
	defer s.cleanup()
	tick := time.NewTicker(jitter(s.h.cfg.ProgressInterval))
	defer tick.Stop()
	var pace *time.Timer
	var lastPass time.Time // start of the last pass that sent
	var wait time.Duration // between passes while busy (see PassInterval)
	for {
		select {
		case <-s.stopc:
			return nil
		case <-tick.C:
			if err := s.tick(); err != nil {
				return err
			}
		default:
		}
		s.mu.Lock()
		reqs := s.ctrl
		s.ctrl = nil
		s.mu.Unlock()
		for _, r := range reqs {
			if err := s.handle(r); err != nil {
				return err
			}
		}
		if d := wait - time.Since(lastPass); d > 0 && len(reqs) == 0 {
			// Busy: let revisions gather for one response each.
			if pace == nil {
				pace = time.NewTimer(d)
				defer pace.Stop()
			} else {
				pace.Reset(d)
			}
			select {
			case <-pace.C:
			case <-s.stopc:
				return nil
			}
		}
		start := time.Now()
		s.sent = 0
		did, err := s.pass()
		if err != nil {
			return err
		}
		if did {
			// The more responses a pass sends, the longer the next one may
			// wait to fill them: one watcher's stream stays near real time.
			lastPass = start
			limit := min(s.h.cfg.PassInterval, time.Duration(s.sent)*waitPerResponse)
			wait = min(max(2*wait, time.Millisecond), limit)
		}
		if s.progressAll {
			if err := s.tryProgressAll(); err != nil {
				return err
			}
		}
		if did || len(reqs) > 0 {
			continue
		}
		// Nothing to send: sleep on the groups, then look once more, since
		// an entry may have come between the pass and the registration.
		for _, m := range s.members {
			m.sleep()
		}
		if s.progressAll {
			s.h.waitRev(s)
		}
		if s.hasWork() {
			continue
		}
		wait = 0 // idle: the next event goes at once
		select {
		case <-s.wake:
		case <-tick.C:
			if err := s.tick(); err != nil {
				return err
			}
		case <-s.stopc:
			return nil
		}
	}
}

func (s *Stream) cleanup() {
	s.turn.end()
	s.h.forget(s)
	for _, w := range s.order {
		s.h.leave(w)
	}
	for _, m := range s.members {
		m.g.mu.Lock()
		m.unlink()
		m.g.mu.Unlock()
	}
	s.order, s.watchers, s.members = nil, nil, nil
	s.h.streams.Add(-1)
}

// hasWork reports whether a request is queued or a watcher has something
// to send.
func (s *Stream) hasWork() bool {
	s.mu.Lock()
	n := len(s.ctrl)
	s.mu.Unlock()
	if n > 0 || (s.progressAll && s.h.Rev() != s.progressSeen) {
		return true
	}
	for _, w := range s.order {
		w.mu.Lock()
		c := w.cursor
		w.mu.Unlock()
		if c == nil || c.next.Load() != nil {
			return true
		}
	}
	return false
}

func (s *Stream) handle(r request) error {
	switch r.kind {
	case reqCreate:
		return s.create(r.create)
	case reqCancel:
		w := s.watchers[r.id]
		if w == nil {
			return nil // etcd answers nothing
		}
		s.remove(w)
		return s.send(&pb.WatchResponse{Header: s.header(s.h.Rev()), WatchId: r.id, Canceled: true})
	case reqProgress:
		if len(s.order) == 0 {
			return nil // etcd answers nothing on a stream without watchers
		}
		rev := s.h.Rev()
		if !s.progressAll || rev > s.progressRev {
			s.progressRev = rev
		}
		s.progressAll = true
		return s.tryProgressAll()
	}
	return nil
}

// refuse answers a creation that makes no watcher, as etcd does.
func (s *Stream) refuse(reason string) error {
	return s.send(&pb.WatchResponse{Header: s.header(s.h.Rev()), WatchId: InvalidID, Created: true,
		Canceled: true, CancelReason: reason})
}

func (s *Stream) create(r *pb.WatchCreateRequest) error {
	if r.StartRevision < 0 {
		return s.refuse(errCompactedText)
	}
	key := r.Key
	if len(key) == 0 {
		key = []byte{0} // the smallest key
	}
	w := &watcher{s: s, startRev: r.StartRevision, prevKV: r.PrevKv, progress: r.ProgressNotify, fragment: r.Fragment}
	var sp span
	single := false
	switch end := r.RangeEnd; {
	case len(end) == 0:
		single = true
		sp = span{key: string(key)}
	case len(end) == 1 && end[0] == 0:
		sp = span{key: string(key), inf: true}
	case bytes.Compare(key, end) >= 0:
		return s.refuse(ErrEmptyRange.Error())
	default:
		sp = span{key: string(key), end: string(end)}
	}
	for _, f := range r.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			w.noPut = true
		case pb.WatchCreateRequest_NODELETE:
			w.noDelete = true
		}
	}
	id := r.WatchId
	if id == 0 { // clientv3.AutoWatchID
		for s.watchers[s.nextID] != nil {
			s.nextID++
		}
		id = s.nextID
		s.nextID++
	} else if s.watchers[id] != nil {
		return s.refuse(ErrDuplicateID.Error())
	}
	w.id = id
	rev := s.h.join(w, sp, single)
	s.watchers[id] = w
	w.idx = int32(len(s.order))
	s.order = append(s.order, w)
	m := s.members[w.g]
	if m == nil {
		m = &member{s: s, g: w.g}
		s.members[w.g] = m
	}
	m.n++
	return s.send(&pb.WatchResponse{Header: s.header(rev), WatchId: id, Created: true})
}

// remove unregisters w from the hub and the stream.
func (s *Stream) remove(w *watcher) {
	s.h.leave(w)
	delete(s.watchers, w.id)
	last := int32(len(s.order) - 1)
	s.order[w.idx] = s.order[last]
	s.order[w.idx].idx = w.idx
	s.order[last] = nil
	s.order = s.order[:last]
	m := s.members[w.g]
	if m.n--; m.n == 0 {
		m.g.mu.Lock()
		m.unlink()
		m.g.mu.Unlock()
		delete(s.members, w.g)
	}
}

// pass gives every watcher one turn: at most one response each. It reports
// whether any watcher made progress.
func (s *Stream) pass() (bool, error) {
	defer s.turn.end()
	did := false
	var compacted []*watcher
	for _, w := range s.order {
		d, c, err := s.serve(w)
		if err != nil {
			return did, err
		}
		did = did || d
		if c {
			compacted = append(compacted, w)
		}
	}
	for _, w := range compacted {
		s.remove(w)
	}
	return did, nil
}

// tick sends the periodic progress notification of each watcher that asked
// for one and sent nothing since the last tick, when it is synced with
// nothing pending (as etcd, which notifies synced watchers only).
func (s *Stream) tick() error {
	rev := s.h.Rev()
	for _, w := range s.order {
		if !w.progress {
			continue
		}
		if w.sentSinceTick {
			w.sentSinceTick = false
			continue
		}
		w.mu.Lock()
		ok := w.cursor != nil && w.cursor.next.Load() == nil && rev >= w.startRev
		w.mu.Unlock()
		if ok {
			if err := s.send(&pb.WatchResponse{Header: s.header(rev), WatchId: w.id}); err != nil {
				return err
			}
		}
	}
	return nil
}

// tryProgressAll answers a pending stream-wide progress request once every
// watcher has sent everything up to the requested revision, with the
// newest revision they all have (at least the requested one, and never
// below a watcher's start revision).
func (s *Stream) tryProgressAll() error {
	if len(s.order) == 0 {
		s.progressAll = false
		return nil
	}
	rev := s.h.Rev()
	s.progressSeen = rev
	var start int64
	for _, w := range s.order {
		rev = min(rev, w.through(rev))
		start = max(start, w.startRev)
	}
	if rev < s.progressRev || rev < start {
		return nil // wait
	}
	s.progressAll = false
	return s.send(&pb.WatchResponse{Header: s.header(rev), WatchId: InvalidID})
}

// sendPicked sends the log events picked for w: in their shared wire form,
// or as pb events when w wants fragments (or the drop failpoint is on).
func (s *Stream) sendPicked(w *watcher, picked []*event, rev int64) error {
	if w.fragment || failpoint.On(failpoint.WatchDropEvent) {
		evs := make([]*mvccpb.Event, len(picked))
		for i, ev := range picked {
			if w.prevKV {
				evs[i] = s.h.withPrev(ev)
			} else {
				evs[i] = &ev.ev
			}
		}
		return s.sendEvents(w, evs, rev)
	}
	enc := make([][]byte, len(picked))
	n := 0
	for i, ev := range picked {
		enc[i] = s.h.encoded(ev, w.prevKV)
		n += len(enc[i])
	}
	resp := &EncodedResponse{Head: &pb.WatchResponse{Header: s.header(rev), WatchId: w.id}, Events: enc, eventBytes: n}
	return s.deliver(w, resp, len(enc), false)
}

// sendEvents sends evs of w (fragmented if w asked for it).
func (s *Stream) sendEvents(w *watcher, evs []*mvccpb.Event, rev int64) error {
	if failpoint.On(failpoint.WatchDropEvent) {
		if evs = dropEvents(evs); len(evs) == 0 {
			return nil
		}
	}
	return s.deliver(w, &pb.WatchResponse{Header: s.header(rev), WatchId: w.id, Events: evs}, len(evs), w.fragment)
}

// deliver sends an event response of w (n events) in the stream's turn.
func (s *Stream) deliver(w *watcher, resp Message, n int, fragment bool) error {
	s.turn.take()
	var err error
	if fragment {
		err = sendFragments(resp.(*pb.WatchResponse), s.h.cfg.FragmentBytes, func(r *pb.WatchResponse) error { return s.send(r) })
	} else {
		err = s.send(resp)
	}
	if err == nil {
		s.sent++
		s.turn.sent(n)
		w.sentSinceTick = true
		s.h.eventsSent.Add(int64(n))
	}
	return err
}

// sendFragments sends resp whole when it is below limit bytes or holds
// fewer than two events; otherwise in pieces, each holding events while it
// stays below limit (at least one), every piece but the last marked
// Fragment — etcd's fragmentation.
func sendFragments(resp *pb.WatchResponse, limit int, send func(*pb.WatchResponse) error) error {
	if resp.Size() < limit || len(resp.Events) < 2 {
		return send(resp)
	}
	shell := *resp
	shell.Events = nil
	shell.Fragment = true
	base := shell.Size()
	evs := resp.Events
	for len(evs) > 0 {
		size, n := base, 0
		for n < len(evs) {
			es := evs[n].Size()
			add := 1 + sovLen(es) + es
			if n > 0 && size+add >= limit {
				break
			}
			size += add
			n++
		}
		piece := shell
		piece.Events = evs[:n:n]
		evs = evs[n:]
		piece.Fragment = len(evs) > 0
		if err := send(&piece); err != nil {
			return err
		}
	}
	return nil
}

// sovLen is the size of n as a protobuf varint.
func sovLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

// dropEvents is the test-only hook failpoint.WatchDropEvent: it leaves out
// the events of revisions divisible by 16 (often enough that a short run
// of a couple of watchers on part of the key space always meets one).
func dropEvents(evs []*mvccpb.Event) []*mvccpb.Event {
	var out []*mvccpb.Event
	for _, ev := range evs {
		if ev.Kv.ModRevision%16 != 0 {
			out = append(out, ev)
		}
	}
	return out
}
