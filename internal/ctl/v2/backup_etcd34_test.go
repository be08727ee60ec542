package ctlv2

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
)

func TestV2BackupEtcdRequest(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		name string
		in   pb.Request
		want string // JSON of the v2store.Request; "nil", "membership" or "error: ..."
	}{
		{"set", pb.Request{Method: "PUT", Path: "/1/a", Val: "v"}, `{"op":"set","path":"/a","value":"v"}`},
		{"set ttl", pb.Request{Method: "PUT", Path: "/1/a", Val: "v", Expiration: 5}, `{"op":"set","path":"/a","value":"v","expire":5}`},
		{"mkdir", pb.Request{Method: "PUT", Path: "/1/d", Dir: true}, `{"op":"set","path":"/d","dir":true}`},
		{"create", pb.Request{Method: "PUT", Path: "/1/a", Val: "v", PrevExist: &no}, `{"op":"create","path":"/a","value":"v"}`},
		{"update", pb.Request{Method: "PUT", Path: "/1/a", Val: "v", PrevExist: &yes}, `{"op":"update","path":"/a","value":"v"}`},
		{"update cas", pb.Request{Method: "PUT", Path: "/1/a", Val: "v", PrevExist: &yes, PrevIndex: 3}, `{"op":"cas","path":"/a","value":"v","prevIndex":3}`},
		{"cas", pb.Request{Method: "PUT", Path: "/1/a", Val: "v", PrevValue: "o"}, `{"op":"cas","path":"/a","value":"v","prevValue":"o"}`},
		{"refresh", pb.Request{Method: "PUT", Path: "/1/a", PrevExist: &yes, Refresh: &yes, Expiration: 9}, `{"op":"update","path":"/a","refresh":true,"expire":9}`},
		{"in order", pb.Request{Method: "POST", Path: "/1/q", Val: "j"}, `{"op":"create","path":"/q","value":"j","unique":true}`},
		{"delete", pb.Request{Method: "DELETE", Path: "/1/d", Dir: true, Recursive: true}, `{"op":"delete","path":"/d","dir":true,"recursive":true}`},
		{"cad", pb.Request{Method: "DELETE", Path: "/1/a", PrevIndex: 4}, `{"op":"cad","path":"/a","prevIndex":4}`},
		{"sync", pb.Request{Method: "SYNC", Time: 77}, `{"op":"expire","time":77}`},
		{"qget", pb.Request{Method: "QGET", Path: "/1/a"}, "nil"},
		{"member attributes", pb.Request{Method: "PUT", Path: "/0/members/1/attributes", Val: "{}"}, "membership"},
		{"cluster version", pb.Request{Method: "PUT", Path: "/0/version", Val: "3.4.0"}, "membership"},
		{"auth", pb.Request{Method: "PUT", Path: "/2/users/root", Val: "{}"}, "error: an etcd v2 auth write (PUT /2/users/root) cannot be carried into cairn's v2 store: cairn has no v2 auth"},
		{"outside", pb.Request{Method: "PUT", Path: "/3/x"}, "error: an etcd v2 write outside the key space (PUT /3/x) cannot be carried into cairn's v2 store"},
		{"unknown method", pb.Request{Method: "PATCH", Path: "/1/x"}, "error: an etcd v2 request PATCH /1/x cannot be carried into cairn's v2 store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := etcdV2Request(&tc.in)
			var got string
			switch {
			case err != nil:
				got = "error: " + err.Error()
			case r == nil:
				got = "nil"
			case r.Op == "":
				got = "membership"
			default:
				b, _ := json.Marshal(r)
				got = string(b)
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// etcd34Snap is an etcd 3.4 v2 store as its .snap holds it (shape taken
// from a live etcd 3.4.23; membership cut short).
const etcd34Snap = `{"Root":{"Path":"/","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{
"0":{"Path":"/0","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{"version":{"Path":"/0/version","CreatedIndex":3,"ModifiedIndex":3,"ExpireTime":"0001-01-01T00:00:00Z","Value":"3.4.0","Children":null}}},
"1":{"Path":"/1","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{
 "d":{"Path":"/1/d","CreatedIndex":4,"ModifiedIndex":4,"ExpireTime":"2030-01-01T00:00:00Z","Value":"","Children":{
  "k":{"Path":"/1/d/k","CreatedIndex":5,"ModifiedIndex":6,"ExpireTime":"0001-01-01T00:00:00Z","Value":"v","Children":null}}},
 "e":{"Path":"/1/e","CreatedIndex":7,"ModifiedIndex":7,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{}},
 "_h":{"Path":"/1/_h","CreatedIndex":8,"ModifiedIndex":8,"ExpireTime":"0001-01-01T00:00:00Z","Value":"hidden","Children":null}}}}},
"WatcherHub":{"EventHistory":{"Queue":{"Events":[
 {"action":"set","node":{"key":"/1/d/k","value":"v","modifiedIndex":6,"createdIndex":5},"prevNode":{"key":"/1/d/k","value":"u","modifiedIndex":5,"createdIndex":5}},
 {"action":"set","node":{"key":"/1/_h","value":"hidden","modifiedIndex":8,"createdIndex":8},"refresh":true},
 null,
 {"action":"set","node":{"key":"/0/version","value":"3.4.0","modifiedIndex":3,"createdIndex":3}},
 {"action":"create","node":{"key":"/1/d/k","value":"u","modifiedIndex":5,"createdIndex":5}}],
 "Size":4,"Front":3,"Back":2,"Capacity":5},"StartIndex":3,"LastIndex":8}},
"CurrentIndex":8,"Stats":{},"CurrentVersion":2}`

func TestV2BackupEtcdTree(t *testing.T) {
	s, err := etcdV2Tree([]byte(etcd34Snap))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	ev, err := s.Get("/", true, true, now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ev)
	const want = `{"action":"get","node":{"dir":true,"nodes":[{"key":"/d","dir":true,"expiration":"2030-01-01T00:00:00Z","ttl":31536000,"nodes":[{"key":"/d/k","value":"v","modifiedIndex":6,"createdIndex":5}],"modifiedIndex":4,"createdIndex":4},{"key":"/e","dir":true,"modifiedIndex":7,"createdIndex":7}]}}`
	if string(b) != want || s.Index() != 8 {
		t.Errorf("tree (index %d):\n%s\nwant (index 8):\n%s", s.Index(), b, want)
	}
	if ev, err := s.Get("/_h", false, false, now); err != nil || *ev.Node.Value != "hidden" {
		t.Errorf("hidden key: %v %v", ev, err)
	}
	// etcd's watch history came along: its membership events and refreshes
	// keep their place but are never returned.
	w, err := s.Watch("/d/k", false, true, 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		e := <-w.Events()
		b, _ := json.Marshal(e)
		got = append(got, string(b))
	}
	w.Remove()
	if want := `{"action":"create","node":{"key":"/d/k","value":"u","modifiedIndex":5,"createdIndex":5}} {"action":"set","node":{"key":"/d/k","value":"v","modifiedIndex":6,"createdIndex":5},"prevNode":{"key":"/d/k","value":"u","modifiedIndex":5,"createdIndex":5}}`; strings.Join(got, " ") != want {
		t.Errorf("history of /d/k:\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	// The refresh at 8 is skipped: a watch from 8 waits.
	if w, err := s.Watch("/_h", false, false, 8); err != nil {
		t.Fatal(err)
	} else {
		select {
		case e := <-w.Events():
			t.Errorf("a refresh answered a watch: %+v", e)
		default:
		}
		w.Remove()
	}
	// The WAL tail: a membership write and a conf change advance the index
	// as etcd's did; a write under /1 takes the next index; a failed one
	// takes none.
	data := func(r pb.Request) []byte { b, _ := r.Marshal(); return b }
	cc, _ := (&raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: 9}).Marshal()
	for _, e := range []raftpb.Entry{
		{Index: 20, Type: raftpb.EntryNormal, Data: data(pb.Request{Method: "PUT", Path: "/0/members/1/attributes", Val: "{}"})},                    // 9
		{Index: 21, Type: raftpb.EntryConfChange, Data: cc},                                                                                         // 10, 11
		{Index: 22, Type: raftpb.EntryNormal, Data: data(pb.Request{Method: "PUT", Path: "/1/d/k", Val: "w", PrevValue: "v"})},                      // 12
		{Index: 23, Type: raftpb.EntryNormal, Data: data(pb.Request{Method: "PUT", Path: "/1/d/k", Val: "x", PrevValue: "nope"})},                   // fails
		{Index: 24, Type: raftpb.EntryNormal, Data: data(pb.Request{Method: "SYNC", Time: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()})}, // 13: /d expires
	} {
		if err := applyEtcdV2Entry(s, e); err != nil {
			t.Fatalf("entry %d: %v", e.Index, err)
		}
	}
	if _, err := s.Get("/d", false, false, now); err == nil || s.Index() != 13 {
		t.Errorf("after the tail: /d %v, index %d (want gone, 13)", err, s.Index())
	}
	var recs []string
	_ = s.Records(func(k, _ []byte) error { recs = append(recs, string(k)); return nil })
	if got := strings.Join(recs, " "); got != "/_h /e e/00000000000000000003 e/00000000000000000005 e/00000000000000000006 e/00000000000000000008 e/00000000000000000012 e/00000000000000000013 index" {
		t.Errorf("records: %s", got)
	}
}

func TestV2BackupEtcdTreeRefused(t *testing.T) {
	for _, tc := range []struct{ name, snap, want string }{
		{"auth", `{"Root":{"Path":"/","Children":{"2":{"Path":"/2","Children":{"users":{"Path":"/2/users","Children":{}},"enabled":{"Path":"/2/enabled","Value":"true"}}}}},"CurrentVersion":2}`,
			"etcd v2 auth data (/2: enabled, users) cannot be carried into cairn's v2 store: cairn has no v2 auth; disable it with etcd first (etcdctl auth disable)"},
		{"unknown top level", `{"Root":{"Path":"/","Children":{"7":{"Path":"/7","Children":{}}}},"CurrentVersion":2}`,
			"etcd v2 store entry /7 (not membership, keys or auth) cannot be carried into cairn's v2 store"},
		{"version", `{"Root":{"Path":"/"},"CurrentVersion":3}`, "etcd v2 store of version 3 cannot be carried into cairn's v2 store"},
		{"misplaced node", `{"Root":{"Path":"/","Children":{"1":{"Path":"/1","Children":{"a":{"Path":"/1/b","Value":"x"}}}}},"CurrentVersion":2}`,
			`etcd v2 node "/1/b" under "/1" cannot be carried into cairn's v2 store`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := etcdV2Tree([]byte(tc.snap)); err == nil || err.Error() != tc.want {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}
