package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// recorder collects a watch channel's responses.
type recorder struct {
	mu     sync.Mutex
	resps  []clientv3.WatchResponse
	closed bool
}

func record(ch clientv3.WatchChan) *recorder {
	r := &recorder{}
	go func() {
		for resp := range ch {
			r.mu.Lock()
			r.resps = append(r.resps, resp)
			r.mu.Unlock()
		}
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
	}()
	return r
}

func (r *recorder) events() []*clientv3.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*clientv3.Event
	for _, resp := range r.resps {
		out = append(out, resp.Events...)
	}
	return out
}

func (r *recorder) responses() []clientv3.WatchResponse {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.resps)
}

// waitEvent waits until the recorder has an event on key (or is closed).
func (r *recorder) waitEvent(t *testing.T, key string) {
	t.Helper()
	waitUntil(t, "an event on "+key, func() bool {
		r.mu.Lock()
		closed := r.closed
		r.mu.Unlock()
		for _, ev := range r.events() {
			if string(ev.Kv.Key) == key {
				return true
			}
		}
		return closed
	})
}

// describe renders events for comparison: type, key, value, revisions,
// version, previous value.
func describe(evs []*clientv3.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "%s %q=%q mod=%d create=%d ver=%d", ev.Type, ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision,
			ev.Kv.CreateRevision, ev.Kv.Version)
		if ev.PrevKv != nil {
			fmt.Fprintf(&b, " prev=%q@%d", ev.PrevKv.Value, ev.PrevKv.ModRevision)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// checkAgainst checks the watch guarantees of got against the reference
// history ref (every event of the watched keys, in order): got must be
// exactly ref's events from got's first revision on (ordered, unique,
// reliable), with correct previous values and creation flags (prev, when
// asked, is the previous value of the key in ref), and every response must
// hold whole revisions (atomic), and every progress notification at R must
// follow every event up to R (bookmarkable).
func checkAgainst(t *testing.T, what string, rec *recorder, ref []*clientv3.Event, from int64, prevKV bool) {
	t.Helper()
	var want []*clientv3.Event
	last := map[string]*mvccpb.KeyValue{}
	for _, ev := range ref {
		if ev.Kv.ModRevision >= from {
			w := *ev
			w.PrevKv = nil
			if prevKV {
				w.PrevKv = last[string(ev.Kv.Key)]
			}
			want = append(want, &w)
		}
		if ev.Type == mvccpb.PUT {
			last[string(ev.Kv.Key)] = ev.Kv
		} else {
			delete(last, string(ev.Kv.Key))
		}
	}
	got := rec.events()
	if g, w := describe(got), describe(want); g != w {
		t.Fatalf("%s: events differ from the history from revision %d\ngot:\n%s\nwant:\n%s", what, from, g, w)
	}
	seen := int64(0)
	for _, resp := range rec.responses() {
		if resp.IsProgressNotify() {
			for _, ev := range want {
				if ev.Kv.ModRevision <= resp.Header.Revision && ev.Kv.ModRevision > seen {
					t.Fatalf("%s: progress notification at %d before event %v", what, resp.Header.Revision, ev)
				}
			}
			continue
		}
		if len(resp.Events) > 0 {
			first := resp.Events[0].Kv.ModRevision
			if first == seen {
				t.Fatalf("%s: revision %d split across responses", what, first)
			}
			seen = resp.Events[len(resp.Events)-1].Kv.ModRevision
		}
		for _, ev := range resp.Events {
			if ev.IsCreate() != (ev.Type == mvccpb.PUT && ev.Kv.Version == 1) {
				t.Fatalf("%s: IsCreate wrong for %v", what, ev)
			}
		}
	}
}

// history returns every event of prefix from revision 1, read by a watch on
// m (the reference: a watcher on a member after the fact).
func history(t *testing.T, m *framework.Member, prefix string, upTo int64) []*clientv3.Event {
	t.Helper()
	c := m.Client3()
	defer c.Close()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	rec := record(c.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(1)))
	waitUntil(t, fmt.Sprintf("history up to %d on %s", upTo, m.Name), func() bool {
		evs := rec.events()
		return len(evs) > 0 && evs[len(evs)-1].Kv.ModRevision >= upTo
	})
	return rec.events()
}

// watchScript runs one scripted sequence of writes, watches, a compaction
// and a defrag against the member at ep and returns a transcript of what
// every watcher received, for comparison between etcd and cairn.
func watchScript(t *testing.T, m *framework.Member) string {
	c := m.Client3()
	defer c.Close()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	var out strings.Builder
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	nodel := record(c.Watch(ctx, "a", clientv3.WithFilterDelete()))
	future := record(c.Watch(ctx, "a", clientv3.WithRev(7), clientv3.WithPrevKV()))
	time.Sleep(200 * time.Millisecond)                                                 // both created before the writes
	must(c.Put(ctx, "a", "1"))                                                         // 2
	must(c.Put(ctx, "b", "1"))                                                         // 3
	must(c.Txn(ctx).Then(clientv3.OpPut("a", "2"), clientv3.OpPut("c", "1")).Commit()) // 4
	must(c.Delete(ctx, "a"))                                                           // 5
	must(c.Put(ctx, "a", "3"))                                                         // 6
	must(c.Delete(ctx, "b", clientv3.WithRange("d")))                                  // 7: b and c
	must(c.Put(ctx, "d", "1"))                                                         // 8
	all := record(c.Watch(ctx, "", clientv3.WithFromKey(), clientv3.WithRev(1), clientv3.WithPrevKV()))
	noput := record(c.Watch(ctx, "b", clientv3.WithRange("d"), clientv3.WithRev(3), clientv3.WithFilterPut()))
	all.waitEvent(t, "d")
	must(c.Compact(ctx, 5))
	compacted := record(c.Watch(ctx, "a", clientv3.WithRev(4)))
	atCompaction := record(c.Watch(ctx, "a", clientv3.WithRev(5), clientv3.WithPrevKV()))
	must(c.Put(ctx, "a", "4")) // 9
	if _, err := c.Defragment(ctx, m.Client); err != nil {
		t.Fatal(err)
	}
	must(c.Put(ctx, "a", "5")) // 10
	for _, r := range []*recorder{nodel, future, all, atCompaction} {
		waitUntil(t, "the last event", func() bool {
			evs := r.events()
			return len(evs) > 0 && evs[len(evs)-1].Kv.ModRevision == 10
		})
	}
	waitUntil(t, "the compaction cancel", func() bool {
		rs := compacted.responses()
		return len(rs) > 0 && rs[len(rs)-1].Canceled
	})
	// A progress request: every watcher of the stream is synced, so it is
	// answered at the current revision.
	if err := c.RequestProgress(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the progress notification", func() bool {
		rs := all.responses()
		return rs[len(rs)-1].IsProgressNotify()
	})
	// etcd's watch metrics, described alike.
	resp, err := http.Get(m.Client + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"watch_stream_total", "watcher_total", "slow_watcher_total", "events_total", "pending_events_total"} {
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, "# HELP etcd_debugging_mvcc_"+name+" ") || strings.HasPrefix(l, "# TYPE etcd_debugging_mvcc_"+name+" ") {
				fmt.Fprintln(&out, l)
			}
		}
	}
	for _, w := range []struct {
		name string
		r    *recorder
	}{{"nodelete", nodel}, {"future", future}, {"all", all}, {"noput", noput}, {"compacted", compacted}, {"at-compaction", atCompaction}} {
		fmt.Fprintf(&out, "== %s\n%s", w.name, describe(w.r.events()))
		for _, resp := range w.r.responses() {
			if resp.Canceled || resp.IsProgressNotify() {
				fmt.Fprintf(&out, "canceled=%v compact=%d progress=%v rev=%d err=%v\n", resp.Canceled, resp.CompactRevision,
					resp.IsProgressNotify(), resp.Header.Revision, resp.Err())
			}
		}
	}
	return out.String()
}

// The same sequence on etcd 3.6.16 and cairn gives every watcher the same
// events: filters, a future start revision (nothing before it, etcd
// #20221), a replay from revision 1 with previous values, a range, a start
// below the compaction (cancelled with the compaction revision) and at it
// (the delete at the compaction revision kept, etcd #18089), a defrag in
// between, and a progress request answered at the current revision.
func TestWatchMatchesEtcd(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	var mu sync.Mutex
	transcripts := map[string]string{}
	var wg sync.WaitGroup
	for name, bin := range map[string]string{"etcd": ref.Etcd, "cairn": framework.Cairn(t)} {
		m := framework.NewMember(t, bin, name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.StartAndWait(20 * time.Second)
			s := watchScript(t, m)
			mu.Lock()
			transcripts[name] = s
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if transcripts["cairn"] != transcripts["etcd"] {
		t.Fatalf("cairn's watchers:\n%s\netcd's:\n%s", transcripts["cairn"], transcripts["etcd"])
	}
	t.Logf("both:\n%s", transcripts["etcd"])
}

// fragments opens a raw watch stream on m with fragment set and returns how
// many events each response carried, until a response without Fragment.
func fragments(t *testing.T, m *framework.Member, prefix string, rev int64) []int {
	c := m.Client3()
	defer c.Close()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	st, err := pb.NewWatchClient(c.ActiveConnection()).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	end := []byte(prefix)
	end[len(end)-1]++
	if err := st.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte(prefix), RangeEnd: end, StartRevision: rev, PrevKv: true, Fragment: true}}}); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for {
		r, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.Created {
			continue
		}
		sizes = append(sizes, len(r.Events))
		if !r.Fragment {
			return sizes
		}
	}
}

// A revision too large for one response reaches a watcher that asked for
// fragments in the same pieces from etcd and cairn (cut at
// --max-request-bytes plus gRPC's overhead), and clientv3 puts them back
// together.
func TestWatchFragmentsMatchEtcd(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	got := map[string][]int{}
	val := strings.Repeat("v", 1024)
	for name, bin := range map[string]string{"etcd": ref.Etcd, "cairn": framework.Cairn(t)} {
		m := framework.NewMember(t, bin, name, "--max-request-bytes", "20480")
		m.StartAndWait(20 * time.Second)
		c := m.Client3()
		ctx := ctxT(t)
		for i := 0; i < 600; i += 10 {
			var ops []clientv3.Op
			for j := i; j < i+10; j++ {
				ops = append(ops, clientv3.OpPut(fmt.Sprintf("f/%03d", j), val))
			}
			if _, err := c.Txn(ctx).Then(ops...).Commit(); err != nil {
				t.Fatal(err)
			}
		}
		d, err := c.Delete(ctx, "f/", clientv3.WithPrefix())
		if err != nil || d.Deleted != 600 {
			t.Fatalf("%s: delete: %v %v", name, d, err)
		}
		got[name] = fragments(t, m, "f/", d.Header.Revision)
		whole := <-c.Watch(ctx, "f/", clientv3.WithPrefix(), clientv3.WithRev(d.Header.Revision), clientv3.WithPrevKV(), clientv3.WithFragment())
		if len(whole.Events) != 600 || whole.Events[599].PrevKv == nil {
			t.Fatalf("%s: reassembled response has %d events", name, len(whole.Events))
		}
		c.Close()
	}
	if !slices.Equal(got["cairn"], got["etcd"]) || len(got["etcd"]) < 2 {
		t.Fatalf("fragments: cairn %v, etcd %v", got["cairn"], got["etcd"])
	}
}

// clusterWriter puts keys of a prefix until stopped, through a client of
// every member, and remembers what succeeded.
type clusterWriter struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	revs []int64
}

func startWriter(t *testing.T, c *framework.Cluster, prefix string) *clusterWriter {
	cl, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	w := &clusterWriter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer cl.Close()
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			r, err := cl.Put(ctx, fmt.Sprintf("%s%03d", prefix, i%50), fmt.Sprint(i))
			cancel()
			if err == nil {
				w.mu.Lock()
				w.revs = append(w.revs, r.Header.Revision)
				w.mu.Unlock()
			} else {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	return w
}

func (w *clusterWriter) finish() []int64 {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.revs
}

// clusterTargetsWatch are the binaries the cluster watch tests run on.
func clusterTargetsWatch(t *testing.T) map[string]string {
	return map[string]string{"cairn": framework.Cairn(t), "etcd": refs.EtcdRelease(t, refs.Default).Etcd}
}

// Watchers keep every guarantee while members are killed and restarted and
// the leader changes (3 members, writes throughout): clientv3's watches,
// on clients of every member, resume on another member from their last
// revision; each ends with exactly the history, as every member reports it.
func TestWatchAcrossKillsAndLeaderChange(t *testing.T) {
	for name, bin := range clusterTargetsWatch(t) {
		t.Run(name, func(t *testing.T) {
			c := framework.NewCluster(t, []string{bin}, 3)
			c.Start(60 * time.Second)
			cl := c.Client()
			defer cl.Close()
			// The kills, restarts and waits below take 5 s or more:
			// ctxT's 10 s are too few for all of them.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			type watchSpec struct {
				rec  *recorder
				from int64
			}
			var watches []watchSpec
			for i := range c.Members {
				// One client per member, with every endpoint, its own first.
				eps := c.Endpoints()
				eps[0], eps[i] = eps[i], eps[0]
				wc, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
				if err != nil {
					t.Fatal(err)
				}
				defer wc.Close()
				g, err := wc.Get(ctx, "k/")
				if err != nil {
					t.Fatal(err)
				}
				watches = append(watches, watchSpec{record(wc.Watch(ctx, "k/", clientv3.WithPrefix(), clientv3.WithPrevKV(),
					clientv3.WithRev(g.Header.Revision+1))), g.Header.Revision + 1})
			}
			w := startWriter(t, c, "k/")
			time.Sleep(500 * time.Millisecond)
			lead := c.Leader(10 * time.Second)
			c.Members[lead].Kill() // leader change
			time.Sleep(time.Second)
			c.Members[lead].Start()
			c.Members[lead].WaitReady(30 * time.Second)
			other := (c.Leader(10*time.Second) + 1) % 3
			c.Members[other].Kill() // a follower
			time.Sleep(500 * time.Millisecond)
			c.Members[other].Start()
			c.Members[other].WaitReady(30 * time.Second)
			time.Sleep(300 * time.Millisecond)
			acked := w.finish()
			end, err := cl.Put(ctx, "k/end", "")
			if err != nil {
				t.Fatal(err)
			}
			var ref []*clientv3.Event
			for i, m := range c.Members {
				h := history(t, m, "k/", end.Header.Revision)
				if i > 0 && describe(h) != describe(ref) {
					t.Fatalf("%s and %s disagree on the history", c.Members[0].Name, m.Name)
				}
				ref = h
			}
			revs := map[int64]bool{}
			for _, ev := range ref {
				revs[ev.Kv.ModRevision] = true
			}
			for _, r := range acked {
				if !revs[r] {
					t.Fatalf("acknowledged put at revision %d missing from the history", r)
				}
			}
			for i, ws := range watches {
				ws.rec.waitEvent(t, "k/end")
				checkAgainst(t, fmt.Sprintf("watch via %s", c.Members[i].Name), ws.rec, ref, ws.from, true)
			}
			t.Logf("%d puts acknowledged, history of %d events", len(acked), len(ref))

			// Quorum lost: on the remaining member a watch that requires a
			// leader ends with "no leader" (after a few election timeouts);
			// one that does not stays open.
			last := c.Members[2]
			lc := last.Client3()
			defer lc.Close()
			needLeader := record(lc.Watch(clientv3.WithRequireLeader(ctx), "k/", clientv3.WithPrefix()))
			plain := record(lc.Watch(ctx, "k/", clientv3.WithPrefix()))
			time.Sleep(200 * time.Millisecond)
			c.Members[0].Kill()
			c.Members[1].Kill()
			lost := time.Now()
			waitUntil(t, "the require-leader watch to end", func() bool {
				needLeader.mu.Lock()
				defer needLeader.mu.Unlock()
				return needLeader.closed
			})
			rs := needLeader.responses()
			if len(rs) == 0 || !errors.Is(rs[len(rs)-1].Err(), rpctypes.ErrNoLeader) {
				t.Fatalf("require-leader watch ended with %v", rs)
			}
			plain.mu.Lock()
			closed := plain.closed
			plain.mu.Unlock()
			if closed {
				t.Fatal("a watch without the leader requirement ended too")
			}
			t.Logf("require-leader watch ended %v after quorum loss", time.Since(lost).Round(100*time.Millisecond))
		})
	}
}

// A member cut off while the others write far past its log (etcd #15271,
// #20221's shape; here paused with SIGSTOP, its connections open) gets the
// leader's snapshot when it comes back, while its watchers stay connected:
// they must go on from where they were with the revisions the snapshot
// skipped over — no gap, no old event — a watcher on a future revision
// must get nothing before it, and no progress notification may claim a
// revision before events not yet sent, or before a watcher's start.
func TestWatchAcrossSnapshotInstall(t *testing.T) {
	for name, bin := range clusterTargetsWatch(t) {
		t.Run(name, func(t *testing.T) {
			c := framework.NewCluster(t, []string{bin}, 3, "--snapshot-count", "100", "--snapshot-catchup-entries", "20",
				"--watch-progress-notify-interval", "100ms")
			c.Start(60 * time.Second)
			lead := c.Leader(10 * time.Second)
			lagger := c.Members[(lead+1)%3]
			writerM := c.Members[lead]
			lc := lagger.Client3()
			defer lc.Close()
			ctx, cancel := context.WithCancel(ctxT(t))
			defer cancel()
			g, err := lc.Get(ctx, "k/")
			if err != nil {
				t.Fatal(err)
			}
			start := g.Header.Revision
			now := record(lc.Watch(ctx, "k/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithProgressNotify()))
			futureRev := start + 900
			future := record(lc.Watch(ctx, "k/", clientv3.WithPrefix(), clientv3.WithRev(futureRev), clientv3.WithProgressNotify()))
			time.Sleep(200 * time.Millisecond)
			lagger.Pause()
			wc := writerM.Client3()
			defer wc.Close()
			// More puts than raft keeps in flight to one member (512
			// messages): the leader stops sending to the paused member and
			// compacts its log past it, so it needs the snapshot.
			for i := 0; i < 1200; i++ {
				if _, err := wc.Put(ctx, fmt.Sprintf("k/%03d", i%60), fmt.Sprint(i)); err != nil {
					lagger.Resume()
					t.Fatal(err)
				}
			}
			lagger.Resume()
			if !lagger.WaitLog("applied snapshot", 30*time.Second) {
				t.Fatalf("the lagging member did not install a snapshot:\n%s", lagger.Log())
			}
			end, err := wc.Put(ctx, "k/end", "")
			if err != nil {
				t.Fatal(err)
			}
			ref := history(t, writerM, "k/", end.Header.Revision)
			now.waitEvent(t, "k/end")
			future.waitEvent(t, "k/end")
			checkAgainst(t, "watch from before the snapshot", now, ref, start+1, true)
			checkAgainst(t, "watch from a future revision", future, ref, futureRev, false)
			for _, r := range future.responses() {
				if r.IsProgressNotify() && r.Header.Revision < futureRev {
					t.Fatalf("progress notification at %d before the start %d", r.Header.Revision, futureRev)
				}
			}
		})
	}
}
