package watch

import (
	"bytes"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// watchSpec is a watcher the random test created, with what is needed to
// compute the events it must get.
type watchSpec struct {
	c        *client
	id       int64
	req      *pb.WatchCreateRequest
	canceled bool // by a cancel request
}

func (ws *watchSpec) matches(ev *mvccpb.Event) bool {
	r := ws.req
	k := ev.Kv.Key
	switch {
	case len(r.RangeEnd) == 0:
		if !bytes.Equal(k, r.Key) {
			return false
		}
	case len(r.RangeEnd) == 1 && r.RangeEnd[0] == 0:
		if bytes.Compare(k, r.Key) < 0 {
			return false
		}
	default:
		if bytes.Compare(k, r.Key) < 0 || bytes.Compare(k, r.RangeEnd) >= 0 {
			return false
		}
	}
	for _, f := range r.Filters {
		if (f == pb.WatchCreateRequest_NOPUT && ev.Type == mvccpb.PUT) || (f == pb.WatchCreateRequest_NODELETE && ev.Type == mvccpb.DELETE) {
			return false
		}
	}
	return true
}

// The watch guarantees under a random load: watchers over single keys,
// ranges and from-key ranges, from now, from past and future revisions,
// with filters and previous values, on streams whose clients stall at
// random (so watchers are moved aside and catch up from the backend),
// created and cancelled while transactions, compactions and backend
// restores go on. Each watcher must get exactly the events of its range
// from its start, in order, none twice, each revision's events in one
// response, with correct previous values; a compacted start must end in
// a cancellation carrying the compaction revision; every progress
// notification at R must come after every event up to R (bookmarkable).
func TestGuaranteesRandom(t *testing.T) {
	for seed := int64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { guaranteesRandom(t, seed) })
	}
}

func guaranteesRandom(t *testing.T, seed int64) {
	rnd := rand.New(rand.NewSource(seed))
	e := newEnv(t, func(c *Config) {
		c.BatchRevisions = 7
		c.MaxLagBytes = 3000
		c.MaxRetainedBytes = 9000
		c.SweepInterval = 2 * time.Millisecond
		c.ProgressInterval = 5 * time.Millisecond
	})
	key := func() string { return fmt.Sprintf("k%02d", rnd.Intn(20)) }
	var clients []*client
	for i := 0; i < 5; i++ {
		clients = append(clients, e.newClient())
	}
	var specs []*watchSpec
	nextID := map[*client]int64{}
	newWatch := func() {
		c := clients[rnd.Intn(len(clients))]
		r := &pb.WatchCreateRequest{Key: []byte(key()), PrevKv: rnd.Intn(2) == 0, ProgressNotify: rnd.Intn(3) == 0}
		switch rnd.Intn(4) {
		case 1:
			r.RangeEnd = []byte(key())
			if bytes.Compare(r.Key, r.RangeEnd) >= 0 {
				r.Key, r.RangeEnd = []byte("k"), []byte("l")
			}
		case 2:
			r.RangeEnd = []byte{0}
		}
		rev := e.st.Rev()
		switch rnd.Intn(4) {
		case 1:
			r.StartRevision = max(1, rev-int64(rnd.Intn(60)))
		case 2:
			r.StartRevision = rev + 1 + int64(rnd.Intn(30))
		}
		switch rnd.Intn(6) {
		case 0:
			r.Filters = []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT}
		case 1:
			r.Filters = []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NODELETE}
		}
		r.WatchId = nextID[c] + 1 // explicit IDs: the test knows them
		nextID[c]++
		c.s.Create(r)
		specs = append(specs, &watchSpec{c: c, id: r.WatchId, req: r})
	}
	for i := 0; i < 20; i++ {
		newWatch()
	}
	compacted := int64(0)
	for i := 0; i < 1500; i++ {
		n := 1 + rnd.Intn(3)
		used := map[string]bool{}
		var ops []op
		for j := 0; j < n; j++ {
			k := key()
			if used[k] {
				continue
			}
			used[k] = true
			switch rnd.Intn(6) {
			case 0:
				ops = append(ops, del(k))
			default:
				ops = append(ops, put(k, fmt.Sprintf("v%d", i)))
			}
		}
		if rnd.Intn(40) == 0 {
			ops = []op{delRange("k0", "k1")}
		}
		rev := e.write(ops...)
		switch rnd.Intn(100) {
		case 0, 1, 2:
			newWatch()
		case 3:
			ws := specs[rnd.Intn(len(specs))]
			if !ws.canceled {
				ws.canceled = true
				ws.c.s.Cancel(ws.id)
			}
		case 4:
			c := clients[rnd.Intn(len(clients))]
			c.block(!c.blocked)
		case 5:
			if at := rev - 50; at > compacted {
				e.compact(at)
				compacted = at
			}
		case 6:
			e.hub.Restore()
		case 7:
			clients[rnd.Intn(len(clients))].s.RequestProgress()
		}
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	// The slow path whatever the scheduling above did (on a loaded machine
	// the sweeper may never have caught a blocked client behind): a blocked
	// client's new watcher falls more than MaxLagBytes behind its group's
	// tail until the sweeper moves it aside.
	slow := clients[0]
	slow.block(false)
	r := &pb.WatchCreateRequest{Key: []byte("slow"), WatchId: nextID[slow] + 1}
	nextID[slow]++
	slow.s.Create(r)
	specs = append(specs, &watchSpec{c: slow, id: r.WatchId, req: r})
	slow.waitFor(t, "the slow watcher created", func(rs []*pb.WatchResponse) bool {
		return slices.ContainsFunc(rs, func(x *pb.WatchResponse) bool { return x.Created && x.WatchId == r.WatchId })
	})
	slow.block(true)
	for deadline := time.Now().Add(30 * time.Second); e.hub.Stats().MovedAside == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("a blocked client's watcher was never moved aside (%+v)", e.hub.Stats())
		}
		e.write(put("slow", strings.Repeat("x", 200)))
	}
	// Writes past every future start, then wait until every stream has sent
	// everything: a stream-wide progress notification at the last revision.
	for i := 0; i < 35; i++ {
		e.write(put("zz", "end"))
	}
	final := e.st.Rev()
	for _, c := range clients {
		c.block(false)
		c.s.RequestProgress()
	}
	for _, c := range clients {
		c.waitFor(t, "final progress", func(rs []*pb.WatchResponse) bool {
			live := map[int64]bool{}
			for _, ws := range specs {
				if ws.c == c {
					live[ws.id] = true
				}
			}
			for _, r := range rs {
				switch {
				case r.WatchId == InvalidID && !r.Created && r.Header.Revision >= final:
					return true
				case r.Canceled:
					delete(live, r.WatchId)
				}
			}
			// A stream left without watchers gets no answer, as in etcd.
			return len(live) == 0
		})
	}
	if st := e.hub.Stats(); st.MovedAside == 0 {
		t.Errorf("no watcher was moved aside: the slow path went untested (%+v)", st)
	}
	checkAll(t, e, specs, clients)
}

// checkAll checks every watcher's responses against the writer's log.
func checkAll(t *testing.T, e *env, specs []*watchSpec, clients []*client) {
	t.Helper()
	// prev[i] is the value of log[i]'s key before it (nil: absent).
	prev := make([]*mvccpb.KeyValue, len(e.log))
	last := map[string]*mvccpb.KeyValue{}
	for i, ev := range e.log {
		prev[i] = last[string(ev.Kv.Key)]
		if ev.Type == mvccpb.PUT {
			last[string(ev.Kv.Key)] = ev.Kv
		} else {
			delete(last, string(ev.Kv.Key))
		}
	}
	compactRev := e.st.CompactRev()
	resps := map[*client][]*pb.WatchResponse{}
	for _, c := range clients {
		resps[c] = c.responses()
	}
	for _, ws := range specs {
		rs := resps[ws.c]
		var created *pb.WatchResponse
		for _, r := range rs {
			if r.WatchId == ws.id && r.Created {
				created = r
				break
			}
		}
		if created == nil || created.Canceled {
			t.Fatalf("watch %d (%v) not created: %v", ws.id, ws.req, created)
		}
		start := ws.req.StartRevision
		if start == 0 {
			start = created.Header.Revision + 1
		}
		var want []*mvccpb.Event
		var wantPrev []*mvccpb.KeyValue
		for i := range e.log {
			ev := &e.log[i]
			if ev.Kv.ModRevision >= start && ws.matches(ev) {
				want = append(want, ev)
				wantPrev = append(wantPrev, prev[i])
			}
		}
		got, carriers := eventsOf(rs, ws.id)
		var end *pb.WatchResponse // the cancellation, if any
		for _, r := range rs {
			if r.WatchId == ws.id && r.Canceled {
				end = r
			}
		}
		what := fmt.Sprintf("watch %d %v on stream %p", ws.id, ws.req, ws.c)
		if len(got) > len(want) {
			t.Fatalf("%s: %d events, more than the %d written", what, len(got), len(want))
		}
		for i, ev := range got {
			w := want[i]
			if ev.Type != w.Type || ev.Kv.String() != w.Kv.String() {
				t.Fatalf("%s: event %d is %v, want %v (order, uniqueness or gap)", what, i, ev, w)
			}
			if ws.req.PrevKv && w.Type != mvccpb.PUT || ws.req.PrevKv && w.Kv.CreateRevision != w.Kv.ModRevision {
				switch {
				case ev.PrevKv == nil && wantPrev[i] != nil && w.Kv.ModRevision-1 >= compactRev:
					t.Fatalf("%s: event %v lacks its previous value %v", what, ev, wantPrev[i])
				case ev.PrevKv != nil && (wantPrev[i] == nil || ev.PrevKv.String() != wantPrev[i].String()):
					t.Fatalf("%s: event %v has previous value %v, want %v", what, ev, ev.PrevKv, wantPrev[i])
				}
			} else if ev.PrevKv != nil {
				t.Fatalf("%s: event %v has a previous value it must not have", what, ev)
			}
		}
		switch {
		case end != nil && end.CompactRevision != 0:
			// It had not delivered past the compaction revision.
			if len(got) > 0 && got[len(got)-1].Kv.ModRevision >= end.CompactRevision {
				t.Fatalf("%s: cancelled for compaction at %d after event %v", what, end.CompactRevision, got[len(got)-1])
			}
			if end.CompactRevision > compactRev || end.Header.Revision != 0 {
				t.Fatalf("%s: bad compaction cancellation %v (compacted at %d)", what, end, compactRev)
			}
		case end != nil:
			if !ws.canceled {
				t.Fatalf("%s: cancelled without a request: %v", what, end)
			}
		case len(got) != len(want):
			t.Fatalf("%s: %d events, want %d; missing from %v", what, len(got), len(want), want[len(got)])
		}
		// Atomic: a revision's events in one response.
		for _, r := range carriers {
			for _, ev := range r.Events {
				n := 0
				for _, x := range got {
					if x.Kv.ModRevision == ev.Kv.ModRevision {
						n++
					}
				}
				m := 0
				for _, x := range r.Events {
					if x.Kv.ModRevision == ev.Kv.ModRevision {
						m++
					}
				}
				if n != m {
					t.Fatalf("%s: revision %d split across responses", what, ev.Kv.ModRevision)
				}
			}
		}
	}
	// Bookmarkable: a progress notification at R comes after every event up
	// to R of the watchers it speaks for.
	for _, c := range clients {
		rs := resps[c]
		for i, r := range rs {
			if r.Created || r.Canceled || len(r.Events) > 0 {
				continue
			}
			for _, ws := range specs {
				if ws.c != c || (r.WatchId != InvalidID && r.WatchId != ws.id) {
					continue
				}
				live := false
				for _, x := range rs[:i] {
					if x.WatchId == ws.id && (x.Created || x.Canceled) {
						live = !x.Canceled
					}
				}
				if !live {
					continue // the notification does not speak for it
				}
				if ws.req.StartRevision > r.Header.Revision {
					t.Fatalf("progress %v (#%d) before watch %d's start %d:\n%s", r, i, ws.id, ws.req.StartRevision, brief(rs[:i+1]))
				}
				before, _ := eventsOf(rs[:i], ws.id)
				after, _ := eventsOf(rs[i:], ws.id)
				for _, ev := range after {
					if ev.Kv.ModRevision <= r.Header.Revision {
						seen := false
						for _, b := range before {
							seen = seen || b.Kv.ModRevision >= ev.Kv.ModRevision
						}
						if !seen {
							t.Fatalf("progress notification %v before event %v of watch %d", r, ev, ws.id)
						}
					}
				}
			}
		}
	}
}
