package watch

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// The interval index finds exactly the spans containing a key, through
// random inserts and deletes.
func TestSpanTreeStab(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	var tree spanTree
	live := map[span]*group{}
	key := func() string { return fmt.Sprintf("%c", 'a'+rnd.Intn(20)) }
	for i := 0; i < 3000; i++ {
		s := span{key: key()}
		if rnd.Intn(5) == 0 {
			s.inf = true
		} else {
			s.end = key()
			if s.end <= s.key {
				s.end = s.key + "z"
			}
		}
		if g := live[s]; g != nil && rnd.Intn(2) == 0 {
			tree.delete(s)
			delete(live, s)
		} else if g == nil {
			g := &group{sp: s}
			tree.insert(s, g)
			live[s] = g
		}
		if tree.n != len(live) {
			t.Fatalf("size %d, want %d", tree.n, len(live))
		}
		k := key() + string(rune('a'+rnd.Intn(3)))
		var got, want []string
		tree.stab(k, func(g *group) { got = append(got, fmt.Sprint(g.sp)) })
		for s := range live {
			if s.contains(k) {
				want = append(want, fmt.Sprint(s))
			}
			if tree.get(s) != live[s] {
				t.Fatalf("get %v", s)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("stab %q: %v, want %v", k, got, want)
		}
	}
}

// A client that does not read never holds up the writer or the other
// watchers: its watcher is moved aside when it lags more than MaxLagBytes
// (its log becomes garbage), and once the client reads again it gets every
// event, in order, from the backend and then live.
func TestSlowWatcherMovedAside(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxLagBytes = 64 << 10
		c.MaxRetainedBytes = 64 << 10
		c.SweepInterval = time.Millisecond
	})
	slow, fast := e.newClient(), e.newClient()
	slow.s.Create(create("p/", "p0", 0))
	fast.s.Create(create("p/", "p0", 0))
	slow.waitN(t, 1)
	fast.waitN(t, 1)
	slow.block(true)
	val := strings.Repeat("v", 200)
	start := e.st.Rev()
	const n = 3000
	for i := 0; i < n; i++ {
		e.write(put(fmt.Sprintf("p/%04d", i%100), val))
	}
	// The writes completed while slow reads nothing; fast has everything.
	fast.waitFor(t, "every event on the fast client", func(rs []*pb.WatchResponse) bool {
		evs, _ := eventsOf(rs, 0)
		return len(evs) == n
	})
	deadline := time.Now().Add(5 * time.Second)
	for e.hub.Stats().MovedAside == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("slow watcher never moved aside: %+v", e.hub.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	// What the logs retain stays bounded (a few sweeps' worth of writes).
	e.hub.sweep()
	if retained := e.hub.retained.Load(); retained > 2*64<<10 {
		t.Fatalf("logs retain %d bytes for a stalled client", retained)
	}
	slow.block(false)
	rs := slow.waitFor(t, "every event on the slow client", func(rs []*pb.WatchResponse) bool {
		evs, _ := eventsOf(rs, 0)
		return len(evs) >= n
	})
	evs, _ := eventsOf(rs, 0)
	for i, ev := range evs {
		if ev.Kv.ModRevision != start+1+int64(i) {
			t.Fatalf("slow client's event %d at revision %d, want %d", i, ev.Kv.ModRevision, start+1+int64(i))
		}
	}
	e.write(put("p/x", "live"))
	slow.waitFor(t, "a live event after catching up", func(rs []*pb.WatchResponse) bool {
		evs, _ := eventsOf(rs, 0)
		return len(evs) == n+1
	})
	if st := e.hub.Stats(); st.Slow != 0 || st.Watchers != 2 {
		t.Fatalf("stats after catching up: %+v", st)
	}
}

// Thousands of watchers opened and cancelled (one by one, or by closing
// their streams) leave no goroutine, group, stream or memory behind.
func TestOpenCancelNoLeak(t *testing.T) {
	e := newEnv(t, nil)
	e.write(put("a", "1"))
	runtime.GC()
	goroutines := runtime.NumGoroutine()
	var ms runtime.MemStats
	round := func() {
		var cs []*client
		for i := 0; i < 20; i++ {
			cs = append(cs, e.newClient())
		}
		for i := 0; i < 5000; i++ {
			c := cs[i%len(cs)]
			k := fmt.Sprintf("k%03d", i%700)
			switch i % 3 {
			case 0:
				c.s.Create(create(k, "", 0))
			case 1:
				c.s.Create(create(k, k+"z", 0))
			default:
				c.s.Create(create(k, "\x00", 1))
			}
		}
		for _, c := range cs {
			c.waitN(t, 5000/len(cs))
		}
		e.write(put("k001", "x"), put("k500", "y"))
		for i, c := range cs {
			if i%2 == 0 {
				for id := int64(0); id < int64(5000/len(cs)); id++ {
					c.s.Cancel(id)
				}
			}
		}
		for i, c := range cs {
			if i%2 == 0 {
				c.waitFor(t, "cancellations", func(rs []*pb.WatchResponse) bool {
					n := 0
					for _, r := range rs {
						if r.Canceled {
							n++
						}
					}
					return n == 5000/len(cs)
				})
			}
			c.close()
		}
	}
	round()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap1 := ms.HeapAlloc
	for i := 0; i < 3; i++ {
		round()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := e.hub.Stats(); st.Watchers != 0 || st.Streams != 0 || st.Slow != 0 {
		t.Fatalf("stats after closing everything: %+v", st)
	}
	e.hub.mu.Lock()
	groups, single, ranges, waiters := len(e.hub.groups), len(e.hub.single), e.hub.ranges.n, len(e.hub.revWaiters)
	e.hub.mu.Unlock()
	if groups+single+ranges+waiters != 0 {
		t.Fatalf("left behind: %d groups, %d single keys, %d ranges, %d waiters", groups, single, ranges, waiters)
	}
	e.hub.sweep()
	e.hub.mu.Lock()
	active := len(e.hub.active)
	e.hub.mu.Unlock()
	if active != 0 || e.hub.retained.Load() != 0 {
		t.Fatalf("left behind: %d active groups, %d retained bytes", active, e.hub.retained.Load())
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if grown := int64(ms.HeapAlloc) - int64(heap1); grown > 4<<20 {
		t.Fatalf("heap grew by %d bytes over 3 rounds of 5000 watchers", grown)
	}
}

// A follower that installs a leader's snapshot (the backend replaced by a
// newer one, etcd #15271's shape): its watchers resume from the new state
// without a gap or an old event — a synced watcher gets the revisions the
// snapshot skipped over, then live ones — unless the snapshot's compaction
// removed their next revision: then they are cancelled with that
// compaction revision, as a watcher created afterwards from before it.
func TestRestoreFromSnapshot(t *testing.T) {
	for _, compactAt := range []int64{11, 25} {
		t.Run(fmt.Sprint(compactAt), func(t *testing.T) { restoreFromSnapshot(t, compactAt) })
	}
}

func restoreFromSnapshot(t *testing.T, compactAt int64) {
	leader := newEnv(t, nil)
	follower := newEnv(t, nil)
	for _, x := range []*env{leader, follower} {
		for i := 0; i < 10; i++ {
			x.write(put(fmt.Sprintf("k%d", i%3), fmt.Sprint(i)))
		}
	}
	c := follower.newClient()
	c.s.Create(create("k", "l", 0))    // synced, idle
	c.s.Create(create("k1", "", 0))    // synced
	c.s.Create(create("k2", "", 5))    // caught up from 5
	c.s.Create(create("zz", "", 1000)) // future
	c.waitN(t, 5)
	// The leader goes on (the follower is cut off), and compacts.
	for i := 10; i < 40; i++ {
		leader.write(put(fmt.Sprintf("k%d", i%3), fmt.Sprint(i)))
	}
	leader.compact(compactAt)
	leader.st.Close()
	leader.b.Close()
	data, err := os.ReadFile(leader.b.Path())
	if err != nil {
		t.Fatal(err)
	}
	snapDB := filepath.Join(t.TempDir(), "snap.db")
	if err := os.WriteFile(snapDB, data, 0o600); err != nil {
		t.Fatal(err)
	}
	<-follower.st.WaitCompaction()
	if err := follower.b.Replace(snapDB); err != nil {
		t.Fatal(err)
	}
	if err := follower.st.Reload(); err != nil {
		t.Fatal(err)
	}
	follower.hub.Restore()
	c3 := follower.newClient()
	c3.s.Create(create("k0", "", 5)) // compacted in the new state
	rs := c3.waitN(t, 2)
	if last := rs[1]; last.CompactRevision != compactAt {
		t.Fatalf("watch from before the compaction after restore: %v", last)
	}
	follower.write(put("k1", "live")) // 42
	if compactAt > 12 {
		rs := c.waitFor(t, "compaction cancels", func(rs []*pb.WatchResponse) bool {
			n := 0
			for _, r := range rs {
				if r.CompactRevision == compactAt {
					n++
				}
			}
			return n == 3
		})
		for id := int64(0); id < 3; id++ {
			if evs, _ := eventsOf(rs, id); len(evs) > 0 && evs[len(evs)-1].Kv.ModRevision > 11 {
				t.Fatalf("watch %d got %v after the snapshot", id, evs[len(evs)-1])
			}
		}
		return
	}
	rs = c.waitFor(t, "the live event", func(rs []*pb.WatchResponse) bool {
		evs, _ := eventsOf(rs, 1)
		return len(evs) > 0 && evs[len(evs)-1].Kv.ModRevision == 42
	})
	for id, from := range map[int64]int64{0: 12, 1: 12, 2: 5} {
		evs, _ := eventsOf(rs, id)
		var got []int64
		for _, ev := range evs {
			got = append(got, ev.Kv.ModRevision)
		}
		var want []int64
		for rev := from; rev <= 42; rev++ {
			// Revision r (2..41) put k<(r-2)%3>; 42 put k1.
			k := (rev - 2) % 3
			if rev == 42 {
				k = 1
			}
			if id == 0 || (id == 1 && k == 1) || (id == 2 && k == 2) {
				want = append(want, rev)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("watch %d: revisions %v, want %v", id, got, want)
		}
	}
}

// A client that stops reading keeps no send slot for long: the other
// streams' events go on flowing.
func TestStalledClientHoldsNoSlot(t *testing.T) {
	e := newEnv(t, nil)
	stalled, other := e.newClient(), e.newClient()
	for _, c := range []*client{stalled, other} {
		c.s.Create(create("k", "", 0))
		c.waitN(t, 1)
	}
	stalled.block(true)
	e.write(put("k", "0")) // the stalled stream's send now blocks
	other.waitN(t, 2)
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	for i := 1; i <= 20; i++ {
		e.write(put("k", fmt.Sprint(i)))
		other.waitFor(t, "the event", func(rs []*pb.WatchResponse) bool {
			evs, _ := eventsOf(rs, 0)
			return len(evs) == i+1
		})
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("20 events to a reading client took %v beside a stalled one", d)
	}
	stalled.block(false)
}
