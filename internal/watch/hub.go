package watch

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/mvcc"
)

// Store is what the hub reads: the current revision and read transactions
// for catch-up and previous values. *mvcc.Store implements it.
type Store interface {
	Rev() int64
	Read() *mvcc.ReadTxn
}

var _ Store = (*mvcc.Store)(nil)

// Config configures a Hub. Build it with DefaultConfig.
type Config struct {
	// ProgressInterval is the period of progress notifications to watchers
	// that asked for them (--watch-progress-notify-interval; etcd's default
	// 10m, with up to a tenth of random jitter per stream). Must be > 0.
	ProgressInterval time.Duration
	// FragmentBytes is the response size above which a watcher that asked
	// for fragments gets its events in several responses (etcd: the
	// --max-request-bytes limit plus gRPC overhead). Must be > 0.
	FragmentBytes int
	// BatchRevisions is the most revisions one response, and one backend
	// read of a watcher catching up, carries (etcd's 1000). Must be > 0.
	BatchRevisions int
	// MaxLagBytes is how far (in event bytes) a watcher may fall behind its
	// group's log before it is moved aside to catch up from the backend.
	// Must be > 0.
	MaxLagBytes int64
	// MaxRetainedBytes bounds the event bytes all logs hold for lagging
	// watchers together; above it the most lagging are moved aside first.
	// Must be >= MaxLagBytes.
	MaxRetainedBytes int64
	// SweepInterval is how often lagging watchers are looked for. Must be
	// > 0.
	SweepInterval time.Duration
	// PassInterval bounds how long a busy stream waits between sending
	// passes. A stream that was idle sends at once; while events keep
	// coming it waits 1ms, then twice as long each pass, up to 0.5ms per
	// response its last pass sent and at most this, and each watcher's
	// response then holds every revision that came meanwhile. Responses
	// cost clients and the server more than events do: at 1,000 revisions
	// a second to 1,000 watchers (100 per stream), 50ms gives ~50 events
	// per response and halves both sides' CPU, so writes sharing the
	// machine go faster; a stream of one busy watcher waits at most 0.5ms.
	// 0 sends every revision as it comes. Must be >= 0.
	PassInterval time.Duration
	// WriteShare is the share of the machine's CPUs (GOMAXPROCS) that
	// sending events may take while writes are being applied (an OnEvents
	// in the last 100ms): the time streams hold the hub's send slots is
	// charged against a budget growing by WriteShare × GOMAXPROCS seconds
	// per second, and a stream waits for it. Watchers then fall behind
	// rather than writes slow down; with no write, sends are not limited.
	// 0 means no limit. Must be in [0, 1].
	WriteShare float64
	// Logger for operational logs. Default zap.NewNop().
	Logger *zap.Logger
}

// DefaultConfig returns etcd's intervals and cairn's memory bounds.
func DefaultConfig() Config {
	return Config{
		ProgressInterval: 10 * time.Minute,
		FragmentBytes:    (1536 + 512) * 1024,
		BatchRevisions:   1000,
		MaxLagBytes:      32 << 20,
		MaxRetainedBytes: 256 << 20,
		SweepInterval:    100 * time.Millisecond,
		PassInterval:     50 * time.Millisecond,
		WriteShare:       0.125, // a quarter of one CPU on 2 cores
		Logger:           zap.NewNop(),
	}
}

// Validate reports the first invalid field without changing c.
func (c Config) Validate() error {
	switch {
	case c.ProgressInterval <= 0:
		return fmt.Errorf("watch config: ProgressInterval %v must be > 0", c.ProgressInterval)
	case c.FragmentBytes <= 0:
		return fmt.Errorf("watch config: FragmentBytes %d must be > 0", c.FragmentBytes)
	case c.BatchRevisions <= 0:
		return fmt.Errorf("watch config: BatchRevisions %d must be > 0", c.BatchRevisions)
	case c.MaxLagBytes <= 0:
		return fmt.Errorf("watch config: MaxLagBytes %d must be > 0", c.MaxLagBytes)
	case c.MaxRetainedBytes < c.MaxLagBytes:
		return fmt.Errorf("watch config: MaxRetainedBytes %d must be >= MaxLagBytes %d", c.MaxRetainedBytes, c.MaxLagBytes)
	case c.SweepInterval <= 0:
		return fmt.Errorf("watch config: SweepInterval %v must be > 0", c.SweepInterval)
	case c.PassInterval < 0:
		return fmt.Errorf("watch config: PassInterval %v must be >= 0", c.PassInterval)
	case c.WriteShare < 0 || c.WriteShare > 1:
		return fmt.Errorf("watch config: WriteShare %v must be in [0, 1]", c.WriteShare)
	}
	return nil
}

// Hub connects the store's writes to watch streams. See the package
// documentation.
type Hub struct {
	cfg Config
	lg  *zap.Logger
	st  Store

	// mu protects the group index (single, ranges, groups, each group's
	// watchers) and serialises linking entries with publishing rev.
	mu     sync.Mutex
	single map[string]*group
	ranges spanTree
	// groups lists every group, for Restore.
	groups []*group
	// active lists the groups that got an entry since the sweeper last
	// looked (each once: group.active). Protected by mu.
	active []*group
	// touched is OnEvents' scratch list. Protected by mu.
	touched []*group
	// revWaiters are streams waiting for the revision to move (a pending
	// stream-wide progress request); each is woken by the next OnEvents.
	// Protected by mu, as is each stream's revWaiting.
	revWaiters []*Stream

	// rev is the newest revision whose entries are all linked.
	// Invariant: rev <= the store's revision.
	rev atomic.Int64
	// epoch counts Restores; a tail read in an older epoch must not be
	// followed.
	epoch atomic.Uint64

	// retained is the sum of the groups' retainedSwept: roughly what the
	// logs hold for lagging watchers.
	retained atomic.Int64

	// Metrics (etcd's etcd_debugging_mvcc_* series).
	streams, watchers, slow atomic.Int64
	eventsSent, pending     atomic.Int64
	movedAside              atomic.Int64

	// gate bounds the CPU that sending events takes (see sendGate).
	gate *sendGate

	stopc, donec chan struct{}
	closeOnce    sync.Once
}

// NewHub starts a hub on st, whose writer must call OnEvents after each
// write transaction and Restore after a reload.
func NewHub(st Store, cfg Config) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	h := &Hub{cfg: cfg, lg: lg, st: st, single: make(map[string]*group),
		gate:  newSendGate(runtime.GOMAXPROCS(0)/2, cfg.WriteShare*float64(runtime.GOMAXPROCS(0))),
		stopc: make(chan struct{}), donec: make(chan struct{})}
	h.rev.Store(st.Rev())
	go h.sweepLoop()
	return h, nil
}

// Close stops the sweeper. Streams must be closed by their owners.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		close(h.stopc)
		<-h.donec
	})
}

// Rev is the newest revision every watcher's log has.
func (h *Hub) Rev() int64 { return h.rev.Load() }

// Stats are the hub's gauges and counters (etcd's names in brackets).
type Stats struct {
	Streams    int64 // open streams (watch_stream_total)
	Watchers   int64 // watchers (watcher_total)
	Slow       int64 // watchers catching up from the backend (slow_watcher_total)
	EventsSent int64 // events sent (events_total)
	Pending    int64 // events behind synced watchers at the last sweep (pending_events_total)
	MovedAside int64 // watchers moved aside for lagging, ever
}

// Stats returns the current counters. Any goroutine.
func (h *Hub) Stats() Stats {
	return Stats{Streams: h.streams.Load(), Watchers: h.watchers.Load(), Slow: h.slow.Load(),
		EventsSent: h.eventsSent.Load(), Pending: h.pending.Load(), MovedAside: h.movedAside.Load()}
}

// group is the watchers of one key range and the log of its events.
type group struct {
	sp     span
	single bool // a single key (sp.end unused)
	// tail is the newest entry (a sentinel at first). Written under Hub.mu.
	tail atomic.Pointer[entry]
	// pend collects the current revision's events in OnEvents. Hub.mu.
	pend    []*event
	pendRev int64

	// idx is the group's position in Hub.groups; active says it is in
	// Hub.active. Protected by Hub.mu.
	idx    int32
	active bool

	// mu protects the sleeper list, and watchers (each watcher's gidx is
	// its position), which changes with both mu and Hub.mu held, so either
	// lock reads it.
	mu       sync.Mutex
	watchers []*watcher
	sleepers *member // doubly linked list of streams waiting for an entry

	// retainedSwept is the log bytes the sweeper last found its watchers
	// to hold (part of Hub.retained).
	retainedSwept atomic.Int64
}

func (g *group) contains(key []byte) bool {
	if g.single {
		return string(key) == g.sp.key
	}
	return g.sp.contains(string(key))
}

// entry is one revision's events of a group's range.
type entry struct {
	rev int64
	evs []*event
	// cum is the byte size of every entry of the log up to this one.
	cum  int64
	next atomic.Pointer[entry]
}

// event is one change, shared by every group and watcher it reaches.
type event struct {
	ev   mvccpb.Event // PrevKv nil
	size int64
	// withPrev is ev with its previous value, computed once on first use.
	withPrev atomic.Pointer[mvccpb.Event]
	// enc and encPrev are ev and *withPrev in wire form (see encoded),
	// encoded once on first use and shared by every watcher.
	enc, encPrev atomic.Pointer[[]byte]
}

func newEvent(ev mvccpb.Event) *event {
	kv := len(ev.Kv.Key) + len(ev.Kv.Value)
	return &event{ev: ev, size: int64(2*kv + eventOverhead)}
}

// eventOverhead approximates an event's memory beyond its key and value
// (which it holds twice once encoded).
const eventOverhead = 128

// isCreate is etcd's IsCreateEvent.
func isCreate(ev *mvccpb.Event) bool {
	return ev.Type == mvccpb.PUT && ev.Kv.CreateRevision == ev.Kv.ModRevision
}

// prevKV returns the event with its previous value, as etcd sends it: the
// key at ModRevision-1, absent for a creation or when that revision is
// compacted.
func (h *Hub) withPrev(e *event) *mvccpb.Event {
	if p := e.withPrev.Load(); p != nil {
		return p
	}
	p := &e.ev
	if !isCreate(&e.ev) {
		if kv := h.prevKV(e.ev.Kv.Key, e.ev.Kv.ModRevision-1); kv != nil {
			p = &mvccpb.Event{Type: e.ev.Type, Kv: e.ev.Kv, PrevKv: kv}
		}
	}
	if e.withPrev.CompareAndSwap(nil, p) {
		return p
	}
	return e.withPrev.Load()
}

func (h *Hub) prevKV(key []byte, rev int64) *mvccpb.KeyValue {
	r := h.st.Read()
	defer r.End()
	res, err := r.Range(key, nil, mvcc.RangeOptions{Rev: rev, Limit: 1})
	if err != nil || len(res.KVs) == 0 {
		return nil
	}
	return &res.KVs[0]
}

// OnEvents links the events of revision rev into the logs of the groups
// they belong to, then publishes rev and wakes the streams waiting on those
// groups. It never blocks on watchers. Writer goroutine; the hub keeps the
// KeyValues the events point to, not the evs slice (the store reuses it).
func (h *Hub) OnEvents(rev int64, evs []mvccpb.Event) {
	h.gate.wrote()
	h.mu.Lock()
	touched := h.touched[:0]
	if len(h.groups) > 0 {
		for i := range evs {
			var e *event
			add := func(g *group) {
				if e == nil {
					e = newEvent(evs[i])
				}
				if g.pendRev != rev {
					g.pendRev = rev
					g.pend = g.pend[:0]
					touched = append(touched, g)
				}
				g.pend = append(g.pend, e)
			}
			if g := h.single[string(evs[i].Kv.Key)]; g != nil {
				add(g)
			}
			if h.ranges.n > 0 {
				h.ranges.stab(string(evs[i].Kv.Key), add)
			}
		}
		for _, g := range touched {
			if !g.active {
				g.active = true
				h.active = append(h.active, g)
			}
			prev := g.tail.Load()
			ne := &entry{rev: rev, evs: slices.Clone(g.pend), cum: prev.cum}
			for _, e := range ne.evs {
				ne.cum += e.size
			}
			clear(g.pend)
			g.pend = g.pend[:0]
			prev.next.Store(ne)
			g.tail.Store(ne)
		}
	}
	h.rev.Store(rev)
	h.touched = touched
	waiters := h.revWaiters
	h.revWaiters = nil
	for _, s := range waiters {
		s.revWaiting = false
	}
	h.mu.Unlock()
	for i, g := range touched {
		g.wake()
		touched[i] = nil
	}
	for _, s := range waiters {
		s.wakeUp()
	}
}

// waitRev registers s to be woken by the next revision.
func (h *Hub) waitRev(s *Stream) {
	h.mu.Lock()
	if !s.revWaiting {
		s.revWaiting = true
		h.revWaiters = append(h.revWaiters, s)
	}
	h.mu.Unlock()
}

// forget drops s from the revision waiters.
func (h *Hub) forget(s *Stream) {
	h.mu.Lock()
	if s.revWaiting {
		s.revWaiting = false
		if i := slices.Index(h.revWaiters, s); i >= 0 {
			h.revWaiters = slices.Delete(h.revWaiters, i, i+1)
		}
	}
	h.mu.Unlock()
}

// Restore makes every watcher catch up from the store's current backend,
// after the store reloaded a new one (a snapshot from the leader). Writer
// goroutine, after mvcc.Store.Reload.
func (h *Hub) Restore() {
	h.mu.Lock()
	h.epoch.Add(1)
	old := h.rev.Load()
	streams := map[*Stream]struct{}{}
	for _, g := range h.groups {
		g.mu.Lock()
		for _, w := range g.watchers {
			w.mu.Lock()
			if w.cursor != nil {
				w.settle(old)
				w.cursor = nil
				h.slow.Add(1)
			}
			w.mu.Unlock()
			streams[w.s] = struct{}{}
		}
		g.mu.Unlock()
	}
	h.rev.Store(h.st.Rev())
	h.mu.Unlock()
	for s := range streams {
		s.wakeUp()
	}
	h.lg.Info("watchers resynchronising from a restored backend", zap.Int("streams", len(streams)),
		zap.Int64("previous-revision", old), zap.Int64("revision", h.rev.Load()))
}

// join registers w in its range's group (created when new) and decides
// where it starts: from now (start 0) or a future revision, it follows the
// group's log from the current tail; from a past revision, it catches up
// from the backend. It returns the hub revision it was created at.
func (h *Hub) join(w *watcher, sp span, single bool) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var g *group
	if single {
		g = h.single[sp.key]
	} else {
		g = h.ranges.get(sp)
	}
	if g == nil {
		g = &group{sp: sp, single: single, idx: int32(len(h.groups))}
		g.tail.Store(&entry{})
		if single {
			h.single[sp.key] = g
		} else {
			h.ranges.insert(sp, g)
		}
		h.groups = append(h.groups, g)
	}
	w.g = g
	rev := h.rev.Load()
	w.mu.Lock()
	switch {
	case w.startRev == 0:
		w.nextRev = rev + 1
		w.cursor = g.tail.Load()
	case w.startRev > rev:
		w.nextRev = w.startRev
		w.cursor = g.tail.Load()
	default:
		w.nextRev = w.startRev
		h.slow.Add(1)
	}
	w.mu.Unlock()
	g.mu.Lock()
	w.gidx = int32(len(g.watchers))
	g.watchers = append(g.watchers, w)
	g.mu.Unlock()
	h.watchers.Add(1)
	return rev
}

// leave removes w from its group, and the group from the index when empty.
func (h *Hub) leave(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := w.g
	g.mu.Lock()
	last := int32(len(g.watchers) - 1)
	g.watchers[w.gidx] = g.watchers[last]
	g.watchers[w.gidx].gidx = w.gidx
	g.watchers[last] = nil
	g.watchers = g.watchers[:last]
	empty := last == 0
	g.mu.Unlock()
	w.mu.Lock()
	if w.cursor == nil {
		h.slow.Add(-1)
	}
	w.cursor = nil
	w.gone = true
	w.mu.Unlock()
	h.watchers.Add(-1)
	if !empty {
		return
	}
	if g.single {
		delete(h.single, g.sp.key)
	} else {
		h.ranges.delete(g.sp)
	}
	n := int32(len(h.groups) - 1)
	h.groups[g.idx] = h.groups[n]
	h.groups[g.idx].idx = g.idx
	h.groups[n] = nil
	h.groups = h.groups[:n]
	if g.active {
		i := slices.Index(h.active, g)
		h.active = slices.Delete(h.active, i, i+1)
	}
	h.retained.Add(-g.retainedSwept.Load())
}

// tailAt returns g's tail and the hub revision it covers, read together,
// and the epoch they belong to.
func (h *Hub) tailAt(g *group) (*entry, int64, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return g.tail.Load(), h.rev.Load(), h.epoch.Load()
}

// member is a stream's place among a group's sleepers.
type member struct {
	s          *Stream
	g          *group
	n          int // the stream's watchers in the group (stream goroutine)
	prev, next *member
	linked     bool // protected by g.mu
}

// sleep registers m to be woken by the group's next entry.
func (m *member) sleep() {
	g := m.g
	g.mu.Lock()
	if !m.linked {
		m.linked = true
		m.prev, m.next = nil, g.sleepers
		if g.sleepers != nil {
			g.sleepers.prev = m
		}
		g.sleepers = m
	}
	g.mu.Unlock()
}

// unlink removes m from the sleepers. Caller holds g.mu.
func (m *member) unlink() {
	if !m.linked {
		return
	}
	if m.prev != nil {
		m.prev.next = m.next
	} else {
		m.g.sleepers = m.next
	}
	if m.next != nil {
		m.next.prev = m.prev
	}
	m.prev, m.next, m.linked = nil, nil, false
}

// wake wakes every sleeping stream of g and empties the sleeper list.
func (g *group) wake() {
	g.mu.Lock()
	m := g.sleepers
	g.sleepers = nil
	for m != nil {
		next := m.next
		m.prev, m.next, m.linked = nil, nil, false
		m.s.wakeUp()
		m = next
	}
	g.mu.Unlock()
}

// sweepLoop moves lagging watchers aside every SweepInterval.
func (h *Hub) sweepLoop() {
	defer close(h.donec)
	t := time.NewTicker(h.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-h.stopc:
			return
		case <-t.C:
		}
		h.sweep()
	}
}

// sweep checks the watchers of the groups whose logs grew since the last
// sweep (the others' watchers cannot lag more than they did then): one
// lagging more than MaxLagBytes is moved aside; then, while all logs
// together retain more than MaxRetainedBytes, the watchers of the groups
// just looked at that lag most are moved aside. Idle groups cost nothing.
func (h *Hub) sweep() {
	h.mu.Lock()
	groups := h.active
	h.active = nil
	for _, g := range groups {
		g.active = false
	}
	h.mu.Unlock()
	var pending int64
	type lag struct {
		w   *watcher
		lag int64
	}
	var lagging []lag
	var ws []*watcher
	for _, g := range groups {
		tail := g.tail.Load()
		g.mu.Lock()
		ws = append(ws[:0], g.watchers...)
		g.mu.Unlock()
		minCum := tail.cum
		complete := true
		for _, w := range ws {
			if !w.mu.TryLock() {
				complete = false // being served right now
				continue
			}
			if c := w.cursor; c != nil {
				d := tail.cum - c.cum
				if d > h.cfg.MaxLagBytes {
					h.moveAside(w)
				} else {
					minCum = min(minCum, c.cum)
					if d > 0 {
						lagging = append(lagging, lag{w, d})
						pending += d / eventOverhead
						complete = false // look again next time
					}
				}
			}
			w.mu.Unlock()
		}
		retained := tail.cum - minCum
		h.retained.Add(retained - g.retainedSwept.Swap(retained))
		if !complete {
			h.mu.Lock()
			if !g.active && len(g.watchers) > 0 {
				g.active = true
				h.active = append(h.active, g)
			}
			h.mu.Unlock()
		}
	}
	clear(ws)
	h.pending.Store(pending)
	if h.retained.Load() <= h.cfg.MaxRetainedBytes {
		return
	}
	slices.SortFunc(lagging, func(a, b lag) int { return int(b.lag - a.lag) })
	for _, l := range lagging {
		if h.retained.Load() <= h.cfg.MaxRetainedBytes {
			break
		}
		l.w.mu.Lock()
		if l.w.cursor != nil && !l.w.gone {
			h.moveAside(l.w)
			h.retained.Add(-l.lag)
		}
		l.w.mu.Unlock()
	}
}

// moveAside drops w's cursor: it catches up from the backend from nextRev.
// Caller holds w.mu.
func (h *Hub) moveAside(w *watcher) {
	w.settle(h.rev.Load())
	w.cursor = nil
	h.slow.Add(1)
	h.movedAside.Add(1)
	w.s.wakeUp()
}

// Errors in watch responses, with etcd's texts (clients match them).
var (
	errCompactedText  = "etcdserver: mvcc: required revision has been compacted"
	ErrEmptyRange     = errors.New("mvcc: watcher range is empty")
	ErrDuplicateID    = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
	errStreamIsClosed = errors.New("watch: stream closed")
)

// jitter returns d plus up to a tenth of d at random, as etcd spreads its
// streams' progress tickers.
func jitter(d time.Duration) time.Duration {
	if n := int64(d) / 10; n > 0 {
		return d + time.Duration(rand.Int64N(n))
	}
	return d
}
