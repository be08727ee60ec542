package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchConfig shapes the watch traffic: watchers pinned to members, each
// with its own client (so its own stream), keeping a prefix watch open for
// the whole run.
type watchConfig struct {
	PerMember int           // watchers per member (0: none)
	Progress  time.Duration // how often a watcher asks for a progress notification
}

var defaultWatch = watchConfig{PerMember: 2, Progress: 200 * time.Millisecond}

// watchEvent is one event as a watcher received it.
type watchEvent struct {
	Put  bool
	Key  string
	KV   kvState
	Prev *kvState
}

// watchResp is one response on a watcher's channel.
type watchResp struct {
	At         time.Duration // when the watcher received it
	Rev        int64         // header revision
	Events     []watchEvent
	Created    bool
	Progress   bool // a progress notification (no events, not created, not cancelled)
	Canceled   bool
	CompactRev int64
	Err        string
}

// watchSession is one Watch call: from its start revision until the
// channel closed (a cancellation by the server, an error) or the run ended.
// clientv3 itself re-creates a watch on a broken stream from the last
// revision it delivered + 1; the harness resumes the same way when the
// channel closes.
type watchSession struct {
	Start int64 // requested start revision; 0: from now
	Resps []watchResp
	Ended string
}

// watchClient is one watcher: a prefix, options chosen by the seed, and
// the sessions it went through.
type watchClient struct {
	id            int
	member        string
	cl            *clientv3.Client
	cfg           watchConfig
	rec           *recorder
	rnd           *rand.Rand
	prefix        string
	prevKV        bool
	requireLeader bool
	restarts      bool          // ends its sessions itself now and then, and resumes
	startKind     string        // "now", "past" or "future": the first session's start
	delay         time.Duration // when it starts, after the traffic

	mu       sync.Mutex
	sessions []*watchSession
	covered  atomic.Int64 // highest revision the watcher knows it has every event up to
}

// watchers runs the watchers of a run.
type watchers struct {
	list []*watchClient
	stop chan struct{}
	wg   sync.WaitGroup
}

// startWatchers starts cfg.PerMember watchers on each member, their
// options drawn from seed.
func startWatchers(c *cluster, cfg watchConfig, rec *recorder, seed uint64) *watchers {
	ws := &watchers{stop: make(chan struct{})}
	id := 0
	for range cfg.PerMember {
		for _, m := range c.members {
			rnd := rand.New(rand.NewPCG(seed, 0x3a7c+uint64(id)))
			w := &watchClient{
				id: id, member: m.Name, cl: c.client(m), cfg: cfg, rec: rec, rnd: rnd,
				prefix:        []string{"k", "k", "k", "kl", "k1"}[rnd.IntN(5)],
				prevKV:        rnd.IntN(4) != 0,
				requireLeader: rnd.IntN(2) == 0,
				restarts:      rnd.IntN(2) == 0,
				startKind:     []string{"now", "past", "past", "future"}[rnd.IntN(4)],
				delay:         time.Duration(rnd.IntN(1000)) * time.Millisecond,
			}
			if w.startKind == "now" && rnd.IntN(2) == 0 {
				w.delay = 0
			}
			id++
			ws.list = append(ws.list, w)
			ws.wg.Add(1)
			go func() {
				defer ws.wg.Done()
				w.run(ws.stop)
			}()
		}
	}
	return ws
}

// finish waits until every watcher has every event up to rev (it asks for
// progress notifications meanwhile), then stops them. It returns the
// watchers that did not get there before the deadline.
func (ws *watchers) finish(rev int64, timeout time.Duration) []*watchClient {
	deadline := time.Now().Add(timeout)
	var stuck []*watchClient
	for _, w := range ws.list {
		for w.covered.Load() < rev && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if w.covered.Load() < rev {
			stuck = append(stuck, w)
		}
	}
	close(ws.stop)
	for _, w := range stuck {
		// A watcher of a member that is down may be blocked inside
		// Watch: closing its client returns it.
		w.cl.Close()
	}
	ws.wg.Wait()
	for _, w := range ws.list {
		w.cl.Close()
	}
	return stuck
}

func (w *watchClient) String() string {
	return fmt.Sprintf("w%d@%s prefix %q (start %s, prev_kv %t, require leader %t, restarts %t)", w.id, w.member, w.prefix, w.startKind, w.prevKV, w.requireLeader, w.restarts)
}

// firstStart picks the first session's start revision: 0 (from now), or
// up to 100 revisions before or 30 after the member's current revision.
func (w *watchClient) firstStart(stop <-chan struct{}) (int64, bool) {
	if w.startKind == "now" {
		return 0, true
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := w.cl.Get(ctx, "k", clientv3.WithSerializable(), clientv3.WithCountOnly())
		cancel()
		if err == nil {
			cur := r.Header.Revision
			if w.startKind == "future" {
				return cur + 1 + w.rnd.Int64N(30), true
			}
			return max(1, cur-w.rnd.Int64N(100)), true
		}
		select {
		case <-stop:
			return 0, false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// run keeps a watch open until stop closes, resuming after each closed
// channel from the last revision delivered + 1 (or, before any event, from
// the first session's start).
func (w *watchClient) run(stop <-chan struct{}) {
	select {
	case <-stop:
		return
	case <-time.After(w.delay):
	}
	next, ok := w.firstStart(stop)
	if !ok {
		return
	}
	var lastEv int64
	for {
		sess := &watchSession{Start: next}
		w.mu.Lock()
		w.sessions = append(w.sessions, sess)
		w.mu.Unlock()
		stopped, created, compacted := w.session(sess, stop, &lastEv)
		if stopped {
			return
		}
		switch {
		case compacted > 0:
			// The events before the compaction are gone: resume at
			// the compacted revision, as a client re-listing would
			// start its watch after the list.
			next = max(compacted, lastEv+1)
		case lastEv > 0:
			next = lastEv + 1
		case next == 0 && created > 0:
			next = created + 1
		}
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(50+w.rnd.IntN(100)) * time.Millisecond):
		}
	}
}

// session runs one Watch call; it says whether stop ended it, the header
// revision of its created notification (0 if none came) and the compact
// revision of a cancellation for compaction (0 if not).
func (w *watchClient) session(sess *watchSession, stop <-chan struct{}, lastEv *int64) (stopped bool, created, compacted int64) {
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx := sctx
	if w.requireLeader {
		ctx = clientv3.WithRequireLeader(sctx)
	}
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCreatedNotify()}
	if sess.Start > 0 {
		opts = append(opts, clientv3.WithRev(sess.Start))
	}
	if w.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	ch := w.cl.Watch(ctx, w.prefix, opts...)
	progress := make(chan struct{})
	go func() {
		defer close(progress)
		t := time.NewTicker(w.cfg.Progress)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				pctx, pcancel := context.WithTimeout(ctx, time.Second)
				_ = w.cl.RequestProgress(pctx)
				pcancel()
			}
		}
	}()
	defer func() { cancel(); <-progress }()
	// Half the watchers also end each session themselves after 1–3 s and
	// resume, so resumption is exercised even when no server cancels.
	var restart <-chan time.Time
	if w.restarts {
		restart = time.After(time.Duration(1000+w.rnd.IntN(2000)) * time.Millisecond)
	}
	for {
		select {
		case <-stop:
			sess.Ended = "run ended"
			return true, created, 0
		case <-restart:
			sess.Ended = "ended by the watcher, to resume"
			return false, created, 0
		case resp, ok := <-ch:
			if !ok {
				sess.Ended = "channel closed"
				return false, created, 0
			}
			r := watchResp{At: w.rec.now(), Rev: resp.Header.Revision, Created: resp.Created,
				Progress: resp.IsProgressNotify(), Canceled: resp.Canceled, CompactRev: resp.CompactRevision}
			if err := resp.Err(); err != nil {
				r.Err = err.Error()
			}
			for _, ev := range resp.Events {
				r.Events = append(r.Events, recordEvent(ev))
			}
			w.mu.Lock()
			sess.Resps = append(sess.Resps, r)
			w.mu.Unlock()
			if resp.Created && created == 0 {
				created = resp.Header.Revision
			}
			if n := len(r.Events); n > 0 {
				*lastEv = r.Events[n-1].KV.Mod
			}
			// What the watcher now knows it has: every event up to the
			// last one delivered, or up to a progress notification.
			cov := *lastEv
			if r.Progress && r.Rev > cov {
				cov = r.Rev
			}
			if cov > w.covered.Load() {
				w.covered.Store(cov)
			}
			if r.Canceled || r.Err != "" {
				sess.Ended = "cancelled: " + r.Err
				return false, created, r.CompactRev
			}
		}
	}
}

func recordEvent(ev *clientv3.Event) watchEvent {
	kv := ev.Kv
	e := watchEvent{Put: ev.Type == mvccpb.PUT, Key: string(kv.Key),
		KV: kvState{string(kv.Value), kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease}}
	if p := ev.PrevKv; p != nil {
		e.Prev = &kvState{string(p.Value), p.CreateRevision, p.ModRevision, p.Version, p.Lease}
	}
	return e
}
