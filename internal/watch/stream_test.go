package watch

import (
	"fmt"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func create(key, end string, start int64) *pb.WatchCreateRequest {
	r := &pb.WatchCreateRequest{Key: []byte(key), StartRevision: start}
	if end != "" {
		r.RangeEnd = []byte(end)
	}
	return r
}

// compact renders responses in a short form for golden comparisons.
func brief(rs []*pb.WatchResponse) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "id=%d rev=%d", r.WatchId, r.Header.Revision)
		if r.Created {
			b.WriteString(" created")
		}
		if r.Canceled {
			b.WriteString(" canceled")
		}
		if r.CompactRevision != 0 {
			fmt.Fprintf(&b, " compact=%d", r.CompactRevision)
		}
		if r.CancelReason != "" {
			fmt.Fprintf(&b, " reason=%q", r.CancelReason)
		}
		if r.Fragment {
			b.WriteString(" fragment")
		}
		for _, ev := range r.Events {
			fmt.Fprintf(&b, " %s:%s@%d", ev.Type, ev.Kv.Key, ev.Kv.ModRevision)
			if ev.Type == mvccpb.PUT {
				fmt.Fprintf(&b, "=%s", ev.Kv.Value)
			}
			if ev.PrevKv != nil {
				fmt.Fprintf(&b, "(prev %s@%d)", ev.PrevKv.Value, ev.PrevKv.ModRevision)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// The answers to creations, cancellations and progress requests, as the
// real etcd 3.6.16 gives them for the same requests (recorded with a raw
// gRPC client): auto IDs from 0 skipping taken ones, a refused creation
// answered with ID -1 (negative start revision with the compaction error,
// an empty range, a duplicate ID), nothing for the cancellation of an
// unknown ID, a past start revision replayed in one response with previous
// values where asked, and the stream-wide progress notification (ID -1)
// once every watcher is synced.
func TestCreateCancelAnswers(t *testing.T) {
	e := newEnv(t, nil)
	e.write(put("a", "1"))
	e.write(put("b", "2"))
	e.write(del("a"))
	e.write(put("a", "3"))
	c := e.newClient()
	n := 0
	// do sends a request and waits for its answers.
	do := func(f func(), answers int) {
		f()
		n += answers
		c.waitN(t, n)
	}
	do(func() { c.s.Create(create("a", "", 1)) }, 2)
	do(func() { c.s.Create(create("a", "", -1)) }, 1)
	do(func() { c.s.Create(create("b", "a", 0)) }, 1)
	do(func() { c.s.Create(&pb.WatchCreateRequest{Key: []byte("a"), WatchId: 7}) }, 1)
	do(func() { c.s.Create(&pb.WatchCreateRequest{Key: []byte("a"), WatchId: 7}) }, 1)
	do(func() { c.s.Create(&pb.WatchCreateRequest{Key: []byte("a"), StartRevision: 2, PrevKv: true}) }, 2)
	do(func() {
		c.s.Create(&pb.WatchCreateRequest{Key: []byte(""), RangeEnd: []byte{0}, StartRevision: 1,
			Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT}})
	}, 2)
	c.s.Cancel(99)
	do(func() { c.s.Cancel(7) }, 1)
	do(func() { c.s.RequestProgress() }, 1)
	time.Sleep(20 * time.Millisecond)
	got := brief(c.responses())
	want := `id=0 rev=5 created
id=0 rev=5 PUT:a@2=1 DELETE:a@4 PUT:a@5=3
id=-1 rev=5 created canceled reason="etcdserver: mvcc: required revision has been compacted"
id=-1 rev=5 created canceled reason="mvcc: watcher range is empty"
id=7 rev=5 created
id=-1 rev=5 created canceled reason="mvcc: duplicate watch ID provided on the WatchStream"
id=1 rev=5 created
id=1 rev=5 PUT:a@2=1 DELETE:a@4(prev 1@2) PUT:a@5=3
id=2 rev=5 created
id=2 rev=5 DELETE:a@4
id=7 rev=5 canceled
id=-1 rev=5
`
	if got != want {
		t.Fatalf("answers:\n%s\nwant:\n%s", got, want)
	}
}

// A watcher from a compacted revision is cancelled with the compaction
// revision (header without revision, no reason); from the compaction
// revision itself it gets the history, the delete at that revision
// included (etcd #18089).
func TestCompactedStartRevision(t *testing.T) {
	e := newEnv(t, nil)
	e.write(put("a", "1"))
	e.write(put("a", "2"))
	e.write(del("a"))
	e.write(put("a", "3"))
	e.compact(4)
	c := e.newClient()
	for i, start := range []int64{1, 3, 4} {
		c.s.Create(create("a", "", start))
		c.waitN(t, 2*(i+1))
	}
	got := brief(c.responses())
	want := `id=0 rev=5 created
id=0 rev=0 canceled compact=4
id=1 rev=5 created
id=1 rev=0 canceled compact=4
id=2 rev=5 created
id=2 rev=5 DELETE:a@4 PUT:a@5=3
`
	if got != want {
		t.Fatalf("answers:\n%s\nwant:\n%s", got, want)
	}
	if st := e.hub.Stats(); st.Watchers != 1 || st.Slow != 0 {
		t.Fatalf("stats after compaction cancels: %+v", st)
	}
}

// Live events: one response per revision with all its events (a
// transaction's, in its order), filters applied, previous values, a range
// watcher and a from-key watcher seeing only their keys, a future start
// revision seeing nothing before it.
func TestLiveEvents(t *testing.T) {
	e := newEnv(t, nil)
	e.write(put("k1", "0"))
	c := e.newClient()
	c.s.Create(&pb.WatchCreateRequest{Key: []byte("k"), RangeEnd: []byte("l"), PrevKv: true})
	c.s.Create(&pb.WatchCreateRequest{Key: []byte("k2"), Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NODELETE}})
	c.s.Create(&pb.WatchCreateRequest{Key: []byte("k2"), RangeEnd: []byte{0}, StartRevision: 5})
	c.waitN(t, 3)
	e.write(put("k1", "a"), put("k2", "b"), put("z", "c")) // rev 3
	c.waitN(t, 5)
	e.write(del("k2")) // 4
	c.waitN(t, 6)
	e.write(put("j", "x"))                      // 5
	e.write(delRange("k", "l"), put("k3", "y")) // 6
	got := brief(c.waitN(t, 8))
	want := `id=0 rev=2 created
id=1 rev=2 created
id=2 rev=2 created
id=0 rev=3 PUT:k1@3=a(prev 0@2) PUT:k2@3=b
id=1 rev=3 PUT:k2@3=b
id=0 rev=4 DELETE:k2@4(prev b@3)
id=0 rev=6 DELETE:k1@6(prev a@3) PUT:k3@6=y
id=2 rev=6 PUT:k3@6=y
`
	// Responses of different watchers interleave in any order; compare per
	// watcher.
	for id := int64(0); id < 3; id++ {
		if g, w := perWatcher(got, id), perWatcher(want, id); g != w {
			t.Fatalf("watcher %d:\n%s\nwant:\n%s", id, g, w)
		}
	}
}

func perWatcher(s string, id int64) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, fmt.Sprintf("id=%d ", id)) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A stream-wide progress request waits until every watcher has sent
// everything up to the revision at the request; a future watcher holds it
// until the store reaches its start; a stream without watchers gets no
// answer.
func TestProgressRequest(t *testing.T) {
	e := newEnv(t, nil)
	e.write(put("a", "1"))
	c := e.newClient()
	c.s.RequestProgress() // no watchers: nothing
	c.s.Create(create("a", "", 0))
	c.waitN(t, 1)
	c.block(true)
	e.write(put("a", "2")) // 3
	c.s.RequestProgress()
	time.Sleep(20 * time.Millisecond)
	c.block(false)
	got := brief(c.waitN(t, 3))
	if want := "id=0 rev=2 created\nid=0 rev=3 PUT:a@3=2\nid=-1 rev=3\n"; got != want {
		t.Fatalf("progress after pending events:\n%s\nwant:\n%s", got, want)
	}
	c.s.Create(create("b", "", 5))
	c.waitN(t, 4)
	c.s.RequestProgress()
	time.Sleep(50 * time.Millisecond)
	if n := len(c.responses()); n != 4 {
		t.Fatalf("progress sent before the future watcher's start: %s", brief(c.responses()))
	}
	e.write(put("x", "1")) // 4
	e.write(put("x", "2")) // 5
	rs := c.waitN(t, 5)
	if last := rs[4]; last.WatchId != InvalidID || last.Header.Revision != 5 {
		t.Fatalf("progress at the future start: %s", brief(rs))
	}
}

// Periodic progress notifications go to synced watchers that asked and
// sent nothing since the last tick, at the hub revision; never before a
// future start revision.
func TestProgressNotify(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ProgressInterval = 30 * time.Millisecond })
	e.write(put("a", "1"))
	c := e.newClient()
	c.s.Create(&pb.WatchCreateRequest{Key: []byte("a"), ProgressNotify: true})
	c.s.Create(&pb.WatchCreateRequest{Key: []byte("b"), ProgressNotify: true, StartRevision: 100})
	c.s.Create(&pb.WatchCreateRequest{Key: []byte("c")})
	rs := c.waitN(t, 6)
	for _, r := range rs[3:] {
		if r.WatchId != 0 || len(r.Events) != 0 || r.Header.Revision != 2 {
			t.Fatalf("progress notifications: %s", brief(rs))
		}
	}
}

// Fragmentation follows etcd: pieces that stay below the limit (at least
// one event each), Fragment on all but the last; a response below the
// limit or with one event goes whole.
func TestSendFragments(t *testing.T) {
	var evs []*mvccpb.Event
	for i := 0; i < 10; i++ {
		evs = append(evs, &mvccpb.Event{Kv: &mvccpb.KeyValue{Key: []byte(fmt.Sprintf("k%d", i)), Value: make([]byte, 100), ModRevision: 5}})
	}
	resp := &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 5}, WatchId: 3, Events: evs}
	for _, limit := range []int{1, 150, 300, 1000, 2000} {
		var got []*pb.WatchResponse
		if err := sendFragments(resp, limit, func(r *pb.WatchResponse) error { got = append(got, r); return nil }); err != nil {
			t.Fatal(err)
		}
		// Reference: etcd's rule, by recomputing sizes.
		var want [][]int
		if resp.Size() < limit {
			want = [][]int{{0, 10}}
		} else {
			i := 0
			for i < 10 {
				cur := pb.WatchResponse{Header: resp.Header, WatchId: 3, Fragment: true}
				j := i
				for j < 10 {
					cur.Events = append(cur.Events, evs[j])
					if len(cur.Events) > 1 && cur.Size() >= limit {
						cur.Events = cur.Events[:len(cur.Events)-1]
						break
					}
					j++
				}
				want = append(want, []int{i, j})
				i = j
			}
		}
		if len(got) != len(want) {
			t.Fatalf("limit %d: %d pieces, want %d", limit, len(got), len(want))
		}
		for i, r := range got {
			n := want[i][1] - want[i][0]
			if len(r.Events) != n || r.Fragment != (i < len(got)-1) {
				t.Fatalf("limit %d piece %d: %d events fragment=%v, want %d", limit, i, len(r.Events), r.Fragment, n)
			}
		}
	}
}

// A busy stream waits longer and longer between passes (up to 0.5ms per
// response it sends, at most PassInterval), each watcher's response
// holding every revision that came meanwhile; an event after a quiet spell
// goes at once.
func TestPassIntervalBatches(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PassInterval = 200 * time.Millisecond })
	many := e.newClient()
	for i := 0; i < 100; i++ {
		many.s.Create(create("k", "", 0))
	}
	many.waitN(t, 100)
	start := time.Now()
	e.write(put("k", "first"))
	many.waitN(t, 200)
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Fatalf("an event after a quiet spell took %v", d)
	}
	for i := 0; i < 300; i++ {
		e.write(put("k", fmt.Sprint(i)))
		if i%10 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	rs := many.waitFor(t, "every event", func(rs []*pb.WatchResponse) bool {
		for id := int64(0); id < 100; id++ {
			if evs, _ := eventsOf(rs, id); len(evs) != 301 {
				return false
			}
		}
		return true
	})
	for id := int64(0); id < 100; id++ {
		if _, carriers := eventsOf(rs, id); len(carriers) > 20 {
			t.Fatalf("watch %d got 300 revisions written over ~30ms in %d responses", id, len(carriers))
		}
	}
}
