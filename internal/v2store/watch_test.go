package v2store

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// drain returns the events waiting on w, as "action key@index", and
// whether the channel was closed.
func drain(w *Watcher) ([]string, bool) {
	var out []string
	for {
		select {
		case e, ok := <-w.Events():
			if !ok {
				return out, true
			}
			out = append(out, fmt.Sprintf("%s %s@%d", e.Action, e.Node.Key, e.Node.ModifiedIndex))
		default:
			return out, false
		}
	}
}

func mustWatch(t *testing.T, s *Store, key string, recursive, stream bool, since uint64) *Watcher {
	t.Helper()
	w, err := s.Watch(key, recursive, stream, since)
	if err != nil {
		t.Fatalf("watch %s: %v", key, err)
	}
	return w
}

// TestWatchLive: which registered watchers an event wakes (etcd 3.4's
// rules, checked live against it: docs/operations.md), and that each sees
// it once.
func TestWatchLive(t *testing.T) {
	t0 := time.Unix(1_000_000_000, 0)
	type watch struct {
		key               string
		recursive, stream bool
	}
	tests := []struct {
		name    string
		setup   []*Request
		watches []watch
		ops     []*Request
		want    [][]string // per watch
	}{
		{
			name:    "same key, plain and stream; a plain one sees one event",
			watches: []watch{{"/a", false, false}, {"/a", false, true}},
			ops:     []*Request{{Op: OpSet, Path: "/a", Value: "1"}, {Op: OpDelete, Path: "/a"}},
			want:    [][]string{{"set /a@1"}, {"set /a@1", "delete /a@2"}},
		},
		{
			name:    "recursive sees children, plain does not; hidden children are not seen",
			watches: []watch{{"/d", true, true}, {"/d", false, true}, {"/", true, true}},
			ops: []*Request{{Op: OpSet, Path: "/d/x", Value: "1"}, {Op: OpSet, Path: "/d/_h", Value: "1"},
				{Op: OpSet, Path: "/d/_h2/y", Value: "1"}, {Op: OpSet, Path: "/e", Value: "1"}},
			want: [][]string{{"set /d/x@1"}, nil, {"set /d/x@1", "set /e@4"}},
		},
		{
			name:  "deleting a directory wakes watchers below it and on it, each once",
			setup: []*Request{{Op: OpSet, Path: "/d/x", Value: "1"}},
			watches: []watch{{"/d/x", false, true}, {"/d", false, true}, {"/d/x/y", false, true},
				{"/", false, true}, {"/", true, true}, {"/dx", true, true}},
			ops:  []*Request{{Op: OpDelete, Path: "/d", Recursive: true}},
			want: [][]string{{"delete /d@2"}, {"delete /d@2"}, nil, nil, {"delete /d@2"}, nil},
		},
		{
			name:    "a hidden key itself is seen by its own watcher",
			watches: []watch{{"/_h", false, false}},
			ops:     []*Request{{Op: OpSet, Path: "/_h", Value: "1"}},
			want:    [][]string{{"set /_h@1"}},
		},
		{
			name:    "refresh wakes nobody; expiry does",
			setup:   []*Request{{Op: OpSet, Path: "/t", Value: "v", Expire: t0.Add(time.Second).UnixNano()}},
			watches: []watch{{"/t", false, true}, {"/", true, true}},
			ops: []*Request{
				{Op: OpUpdate, Path: "/t", Refresh: true, Expire: t0.Add(2 * time.Second).UnixNano()},
				{Op: OpSet, Path: "/t", Refresh: true, Expire: t0.Add(3 * time.Second).UnixNano()},
				{Op: OpCAS, Path: "/t", PrevValue: "v", Refresh: true, Expire: t0.Add(4 * time.Second).UnixNano()},
				{Op: OpExpire, Time: t0.Add(5 * time.Second).UnixNano()},
			},
			want: [][]string{{"expire /t@5"}, {"expire /t@5"}},
		},
		{
			name:    "an expired directory wakes watchers of its children",
			setup:   []*Request{{Op: OpSet, Path: "/d", Dir: true, Expire: t0.Add(time.Second).UnixNano()}, {Op: OpSet, Path: "/d/k", Value: "v"}},
			watches: []watch{{"/d/k", false, false}},
			ops:     []*Request{{Op: OpExpire, Time: t0.Add(5 * time.Second).UnixNano()}},
			want:    [][]string{{"expire /d@3"}},
		},
		{
			name:    "failed writes wake nobody",
			setup:   []*Request{{Op: OpSet, Path: "/a", Value: "1"}},
			watches: []watch{{"/a", false, true}},
			ops:     []*Request{{Op: OpCAS, Path: "/a", PrevValue: "x", Value: "2"}, {Op: OpCreate, Path: "/a", Value: "2"}},
			want:    [][]string{nil},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			for _, r := range tc.setup {
				if _, _, err := s.Apply(r, t0); err != nil {
					t.Fatal(err)
				}
			}
			var ws []*Watcher
			for _, w := range tc.watches {
				ws = append(ws, mustWatch(t, s, w.key, w.recursive, w.stream, 0))
			}
			for _, r := range tc.ops {
				s.Apply(r, t0)
			}
			for i, w := range ws {
				got, closed := drain(w)
				if closed || strings.Join(got, ",") != strings.Join(tc.want[i], ",") {
					t.Errorf("watch %+v: %v (closed %v), want %v", tc.watches[i], got, closed, tc.want[i])
				}
			}
		})
	}
}

// TestWatchHistory: a watch from a past index is answered from the last
// HistorySize events; older gives 401 with etcd's cause; refreshes are
// skipped; the history survives Load.
func TestWatchHistory(t *testing.T) {
	s := New()
	t0 := time.Unix(1_000_000_000, 0)
	if _, err := s.Watch("/k", false, false, 1); err != nil {
		t.Fatalf("watch of the next index on an empty store: %v", err)
	}
	for i := 1; i <= 1010; i++ {
		s.Apply(&Request{Op: OpSet, Path: fmt.Sprintf("/k%d", i%3), Value: fmt.Sprint(i)}, t0)
	}
	s.Apply(&Request{Op: OpSet, Path: "/k1", Refresh: true, Expire: t0.Add(time.Hour).UnixNano()}, t0) // 1011
	s.Apply(&Request{Op: OpSet, Path: "/k1", Value: "last"}, t0)                                       // 1012
	_, err := s.Watch("/k1", false, false, 12)
	if e, ok := err.(*Error); !ok || e.ErrorCode != EcodeEventIndexGone || e.Index != 1012 ||
		e.Cause != "the requested history has been cleared [13/12]" || e.StatusCode() != 400 {
		t.Fatalf("old index: %#v", err)
	}
	w := mustWatch(t, s, "/k1", false, false, 13)
	if got, _ := drain(w); strings.Join(got, ",") != "set /k1@13" || w.StartIndex() != 1012 {
		t.Fatalf("from 13: %v start %d", got, w.StartIndex())
	}
	if got, _ := drain(mustWatch(t, s, "/k1", false, false, 1010)); strings.Join(got, ",") != "set /k1@1012" {
		t.Fatalf("refresh at 1011 must be skipped: %v", got)
	}
	if got, _ := drain(mustWatch(t, s, "/", true, true, 1008)); strings.Join(got, ",") != "set /k0@1008,set /k1@1009,set /k2@1010,set /k1@1012" {
		t.Fatalf("stream from the history: %v", got)
	}
	// Reload from persisted records: the same answers.
	recs := map[string][]byte{}
	for _, p := range append(allPaths(s), IndexKey) {
		recs[p] = s.Record(p)
	}
	for i := uint64(1); i <= 1012; i++ {
		if rec := s.Record(eventKey(i)); rec != nil {
			recs[eventKey(i)] = rec
		}
	}
	if len(recs) != 1000+3+1 {
		t.Fatalf("%d records", len(recs))
	}
	s2 := New()
	old := mustWatch(t, s2, "/k1", false, true, 0)
	if err := s2.Load(each(recs)); err != nil {
		t.Fatal(err)
	}
	if _, closed := drain(old); !closed {
		t.Fatal("a watcher survived Load")
	}
	if _, err := s2.Watch("/k1", false, false, 12); err == nil {
		t.Fatal("401 lost on reload")
	}
	if got, _ := drain(mustWatch(t, s2, "/k1", false, false, 1010)); strings.Join(got, ",") != "set /k1@1012" {
		t.Fatalf("after load: %v", got)
	}
}

func allPaths(s *Store) []string {
	var out []string
	var walk func(n *node)
	walk = func(n *node) {
		if n != s.root {
			out = append(out, n.path)
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(s.root)
	return out
}

func each(recs map[string][]byte) func(fn func(k, v []byte) bool) {
	return func(fn func(k, v []byte) bool) {
		keys := make([]string, 0, len(recs))
		for k := range recs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !fn([]byte(k), recs[k]) {
				return
			}
		}
	}
}

// TestWatchHistoryMatch: etcd's matching for past events, quirks included.
func TestWatchHistoryMatch(t *testing.T) {
	s := New()
	t0 := time.Unix(1_000_000_000, 0)
	for _, r := range []*Request{
		{Op: OpSet, Path: "/h/_x", Value: "1"},        // 1
		{Op: OpSet, Path: "/foo", Dir: true},          // 2
		{Op: OpDelete, Path: "/foo", Dir: true},       // 3
		{Op: OpSet, Path: "/foo/a/b", Value: "1"},     // 4
		{Op: OpDelete, Path: "/foo", Recursive: true}, // 5
	} {
		if _, _, err := s.Apply(r, t0); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		key       string
		recursive bool
		since     uint64
		want      string
	}{
		{"/h", true, 1, "set /h/_x@1"}, // hidden keys are not filtered from the history
		{"/foobar", false, 2, "delete /foo@3"},
		{"/foo/x/y", false, 2, "delete /foo@3"},
		{"/", true, 2, "set /foo@2"},
		{"/", false, 2, ""},
		{"/foo/a/b", false, 4, "set /foo/a/b@4"},
		{"/foo/a", false, 4, "delete /foo@5"},
	} {
		w := mustWatch(t, s, tc.key, tc.recursive, false, tc.since)
		if got, _ := drain(w); strings.Join(got, ",") != tc.want {
			t.Errorf("%s recursive=%v from %d: %v, want %q", tc.key, tc.recursive, tc.since, got, tc.want)
		}
		w.Remove()
	}
	if s.Watchers() != 0 {
		t.Fatalf("%d watchers left", s.Watchers())
	}
}

// TestWatchStreamBounded: a stream whose reader stops is dropped once
// StreamBuffer events wait, and unregistered; one that reads keeps going.
func TestWatchStreamBounded(t *testing.T) {
	s := New()
	t0 := time.Unix(1_000_000_000, 0)
	slow := mustWatch(t, s, "/k", false, true, 0)
	fast := mustWatch(t, s, "/k", false, true, 0)
	n := 0
	for i := 0; i < 3*StreamBuffer; i++ {
		s.Apply(&Request{Op: OpSet, Path: "/k", Value: "v"}, t0)
		got, closed := drain(fast)
		if closed || len(got) != 1 {
			t.Fatalf("fast reader at %d: %v %v", i, got, closed)
		}
		n++
	}
	got, closed := drain(slow)
	if !closed || len(got) != StreamBuffer {
		t.Fatalf("slow reader: %d events, closed %v", len(got), closed)
	}
	if s.Watchers() != 1 {
		t.Fatalf("%d watchers", s.Watchers())
	}
	fast.Remove()
	fast.Remove()
	if s.Watchers() != 0 {
		t.Fatalf("%d watchers after Remove", s.Watchers())
	}
}

// TestEventRecordRoundTrip: a persisted event reads back as the same JSON.
func TestEventRecordRoundTrip(t *testing.T) {
	s := New()
	t0 := time.Unix(1_000_000_000, 0)
	ev, _, _ := s.Apply(&Request{Op: OpSet, Path: "/a", Value: "x", Expire: t0.Add(time.Minute).UnixNano()}, t0)
	var h history
	if err := h.load([]byte(eventKey(1)), s.Record(eventKey(1))); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(ev)
	b, _ := json.Marshal(h.at(0).Event)
	if string(a) != string(b) {
		t.Fatalf("%s\n%s", a, b)
	}
}
