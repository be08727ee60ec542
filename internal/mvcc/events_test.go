package mvcc

import (
	"errors"
	"math/rand"
	"slices"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// readEvents returns Events(from, to, match) of a fresh read transaction.
func readEvents(t *testing.T, s *Store, from, to int64, match func([]byte) bool) ([]mvccpb.Event, error) {
	t.Helper()
	r := s.Read()
	defer r.End()
	var out []mvccpb.Event
	err := r.Events(from, to, match, func(ev mvccpb.Event) bool {
		out = append(out, ev)
		return true
	})
	return out, err
}

func sameEvents(t *testing.T, what string, got, want []mvccpb.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d\ngot  %v\nwant %v", what, len(got), len(want), got, want)
	}
	for i := range got {
		if got[i].Type != want[i].Type || got[i].Kv.String() != want[i].Kv.String() {
			t.Fatalf("%s: event %d is %v, want %v", what, i, got[i], want[i])
		}
	}
}

// The history read back from the backend equals the events the writer
// reported (OnEvents) for every revision at or after the compaction
// revision, before and after compactions and restarts; below it the read
// fails with ErrCompacted.
func TestEventsReplayLiveHistory(t *testing.T) {
	var live []mvccpb.Event
	cfg := DefaultConfig()
	cfg.CompactionSleepInterval = 0
	cfg.OnEvents = func(rev int64, evs []mvccpb.Event) { live = append(live, evs...) }
	ts := newTestStore(t, cfg)
	rnd := rand.New(rand.NewSource(7))
	m := newModel()
	since := func(rev int64, match func([]byte) bool) []mvccpb.Event {
		var out []mvccpb.Event
		for _, ev := range live {
			if ev.Kv.ModRevision >= rev && (match == nil || match(ev.Kv.Key)) {
				out = append(out, ev)
			}
		}
		return out
	}
	check := func(what string) {
		t.Helper()
		first := max(ts.CompactRev(), 1)
		for _, from := range []int64{first, first + 1, (first + ts.Rev()) / 2, ts.Rev()} {
			got, err := readEvents(t, ts.Store, from, ts.Rev()+5, nil)
			if err != nil {
				t.Fatalf("%s: from %d: %v", what, from, err)
			}
			sameEvents(t, what, got, since(from, nil))
			match := func(k []byte) bool { return len(k) > 0 && k[0] < 'c' }
			got, err = readEvents(t, ts.Store, from, ts.Rev(), match)
			if err != nil {
				t.Fatal(err)
			}
			sameEvents(t, what+" (matched)", got, since(from, match))
		}
		if c := ts.CompactRev(); c > 1 {
			if _, err := readEvents(t, ts.Store, c-1, ts.Rev(), nil); !errors.Is(err, ErrCompacted) {
				t.Fatalf("%s: events below the compaction: %v, want ErrCompacted", what, err)
			}
		}
	}
	drive(t, ts, m, rnd, 60, 10)
	check("written")
	for _, at := range []int64{m.rev - 30, m.rev - 10} {
		ch, err := ts.Compact(at)
		if err != nil {
			t.Fatal(err)
		}
		<-ch
		check("compacted")
		drive(t, ts, m, rnd, 20, 100)
	}
	ts.restart()
	check("restarted")
}

// A partial read stops when fn returns false; a range past the current
// revision is cut.
func TestEventsStopAndBounds(t *testing.T) {
	ts := newTestStore(t, DefaultConfig())
	for i := 0; i < 5; i++ {
		w := ts.Write()
		if _, err := w.Put([]byte("k"), []byte{byte('0' + i)}, 0); err != nil {
			t.Fatal(err)
		}
		if err := w.End(); err != nil {
			t.Fatal(err)
		}
	}
	r := ts.Read()
	n := 0
	if err := r.Events(2, 100, nil, func(mvccpb.Event) bool { n++; return n < 2 }); err != nil || n != 2 {
		t.Fatalf("stopped read: %d events, %v", n, err)
	}
	r.End()
	evs, err := readEvents(t, ts.Store, 5, 100, nil)
	if err != nil || len(evs) != 2 || evs[1].Kv.ModRevision != 6 {
		t.Fatalf("events 5..100: %v %v", evs, err)
	}
	if evs, err := readEvents(t, ts.Store, 7, 100, nil); err != nil || len(evs) != 0 {
		t.Fatalf("future events: %v %v", evs, err)
	}
}

// etcd #19179: after a compaction at a delete's revision removed every
// earlier revision of the key, a restart that resumes an unfinished
// compaction at that revision must keep the tombstone, so a watcher from
// the compaction revision still sees the delete.
func TestTombstoneAloneSurvivesResumedCompaction(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CompactionBatchLimit = 2
	cfg.CompactionSleepInterval = time.Hour // the second batch never runs before Close
	ts := newTestStore(t, cfg)
	write := func(f func(w *WriteTxn)) {
		w := ts.Write()
		f(w)
		if err := w.End(); err != nil {
			t.Fatal(err)
		}
	}
	write(func(w *WriteTxn) { w.Put([]byte("k"), []byte("v2"), 0) })
	write(func(w *WriteTxn) { w.Put([]byte("k"), []byte("v3"), 0) })
	write(func(w *WriteTxn) { w.DeleteRange([]byte("k"), nil) })
	write(func(w *WriteTxn) { w.Put([]byte("z"), []byte("v5"), 0) })
	if _, err := ts.Compact(4); err != nil {
		t.Fatal(err)
	}
	// The first batch (revisions 2 and 3) is deleted, then the compaction
	// sleeps and Close interrupts it: finishedCompactRev stays unwritten.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := ts.Read()
		n := 0
		r.v.ForEach([]byte("key"), func(k, v []byte) bool { n++; return true })
		r.End()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first compaction batch not done: %d revisions left", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.restart() // resumes the compaction at 4
	<-ts.WaitCompaction()
	evs, err := readEvents(t, ts.Store, 4, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	types := []mvccpb.Event_EventType{}
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	if !slices.Equal(types, []mvccpb.Event_EventType{mvccpb.DELETE, mvccpb.PUT}) || string(evs[0].Kv.Key) != "k" {
		t.Fatalf("events from the compaction revision after a resumed compaction: %v", evs)
	}
	// The next compaction drops the tombstone and the key from the index.
	write(func(w *WriteTxn) { w.Put([]byte("z"), []byte("v6"), 0) })
	ch, err := ts.Compact(6)
	if err != nil {
		t.Fatal(err)
	}
	ts.Close() // stop the slow compaction; reopen with a fast one
	ts.cfg.CompactionSleepInterval = 0
	ts.restart()
	_ = ch
	<-ts.WaitCompaction()
	if n := ts.KeyCount(); n != 1 {
		t.Fatalf("keys after compacting past the tombstone: %d, want 1", n)
	}
}
