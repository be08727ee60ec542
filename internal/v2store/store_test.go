package v2store

import (
	"encoding/json"
	"sort"
	"testing"
	"time"
)

func apply(t *testing.T, s *Store, r *Request) (*Event, *Error) {
	t.Helper()
	ev, _, err := s.Apply(r, time.Unix(0, 0))
	if err != nil {
		return nil, err.(*Error)
	}
	return ev, nil
}

func TestStoreOps(t *testing.T) {
	s := New()
	now := time.Unix(0, 0)
	if ev, err := apply(t, s, &Request{Op: OpSet, Path: "/a/b", Value: "1"}); err != nil || !ev.Created() || ev.EtcdIndex != 1 {
		t.Fatalf("set: %+v %v", ev, err)
	}
	if _, err := apply(t, s, &Request{Op: OpSet, Path: "/a/b/c", Value: "1"}); err == nil || err.ErrorCode != EcodeNotDir || err.Cause != "/a/b" {
		t.Fatalf("set under a file: %v", err)
	}
	if _, err := apply(t, s, &Request{Op: OpCreate, Path: "/a/b"}); err == nil || err.ErrorCode != EcodeNodeExist {
		t.Fatalf("create existing: %v", err)
	}
	if _, err := apply(t, s, &Request{Op: OpCAS, Path: "/a/b", PrevValue: "x", PrevIndex: 9, Value: "2"}); err == nil || err.Cause != "[x != 1] [9 != 1]" {
		t.Fatalf("cas: %v", err)
	}
	if ev, err := apply(t, s, &Request{Op: OpCAS, Path: "/a/b", PrevIndex: 1, Value: "2"}); err != nil || ev.Node.CreatedIndex != 1 || ev.Node.ModifiedIndex != 2 {
		t.Fatalf("cas ok: %+v %v", ev, err)
	}
	if _, err := apply(t, s, &Request{Op: OpDelete, Path: "/a"}); err == nil || err.ErrorCode != EcodeNotFile {
		t.Fatalf("delete dir without dir: %v", err)
	}
	if _, err := apply(t, s, &Request{Op: OpDelete, Path: "/a", Dir: true}); err == nil || err.ErrorCode != EcodeDirNotEmpty {
		t.Fatalf("delete non-empty dir: %v", err)
	}
	if _, err := apply(t, s, &Request{Op: OpSet, Path: "/", Value: "1"}); err == nil || err.ErrorCode != EcodeRootROnly {
		t.Fatalf("set root: %v", err)
	}
	if ev, err := apply(t, s, &Request{Op: OpCreate, Unique: true, Path: "/q", Value: "x"}); err != nil || ev.Node.Key != "/q/00000000000000000003" {
		t.Fatalf("in-order: %+v %v", ev, err)
	}
	apply(t, s, &Request{Op: OpSet, Path: "/a/_hidden", Value: "h"})
	ev, err := s.Get("/", true, true, now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ev)
	want := `{"action":"get","node":{"dir":true,"nodes":[{"key":"/a","dir":true,"nodes":[{"key":"/a/b","value":"2","modifiedIndex":2,"createdIndex":1}],"modifiedIndex":1,"createdIndex":1},{"key":"/q","dir":true,"nodes":[{"key":"/q/00000000000000000003","value":"x","modifiedIndex":3,"createdIndex":3}],"modifiedIndex":3,"createdIndex":3}]}}`
	if string(b) != want {
		t.Fatalf("get:\n%s\nwant\n%s", b, want)
	}
	if _, err := s.Get("/nope/x", false, false, now); err == nil || err.(*Error).Cause != "/nope" {
		t.Fatalf("get missing: %v", err)
	}
}

func TestStoreTTLAndReload(t *testing.T) {
	s := New()
	t0 := time.Unix(1_000_000_000, 0)
	apply(t, s, &Request{Op: OpSet, Path: "/t", Value: "v", Expire: t0.Add(time.Second).UnixNano()})
	apply(t, s, &Request{Op: OpSet, Path: "/d/k", Value: "v"})
	apply(t, s, &Request{Op: OpUpdate, Path: "/d", Expire: t0.Add(2 * time.Second).UnixNano()})

	// Persist every path the applies changed, then reload into a new store.
	recs := map[string][]byte{}
	for _, p := range []string{"/t", "/d", "/d/k", IndexKey} {
		if r := s.Record(p); r != nil {
			recs[p] = r
		}
	}
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s2 := New()
	if err := s2.Load(func(fn func(k, v []byte) bool) {
		for _, k := range keys {
			if !fn([]byte(k), recs[k]) {
				return
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if s2.Index() != 3 {
		t.Fatalf("index %d", s2.Index())
	}
	if first, ok := s2.HasTTL(); !ok || !first.Equal(t0.Add(time.Second)) {
		t.Fatalf("ttl %v %v", first, ok)
	}
	_, changed, _ := s2.Apply(&Request{Op: OpExpire, Time: t0.Add(1500 * time.Millisecond).UnixNano()}, t0)
	if len(changed) != 2 || changed[0] != "/t" || changed[1] != eventKey(4) || s2.Index() != 4 {
		t.Fatalf("expire 1: %v %d", changed, s2.Index())
	}
	_, changed, _ = s2.Apply(&Request{Op: OpExpire, Time: t0.Add(3 * time.Second).UnixNano()}, t0)
	sort.Strings(changed)
	if len(changed) != 3 || changed[0] != "/d" || changed[2] != eventKey(5) || s2.Index() != 5 {
		t.Fatalf("expire 2: %v %d", changed, s2.Index())
	}
	if s2.Record("/d/k") != nil {
		t.Fatal("child of an expired dir survives")
	}
}

func TestCarrier(t *testing.T) {
	r := &Request{Op: OpSet, Path: "/x", Value: "y"}
	txn, err := Carrier(r)
	if err != nil {
		t.Fatal(err)
	}
	got := FromCarrier(txn)
	if got == nil || *got != *r {
		t.Fatalf("round trip: %+v", got)
	}
	txn.Compare[0].Key = []byte("other")
	if FromCarrier(txn) != nil {
		t.Fatal("a txn on another key taken for a carrier")
	}
}
