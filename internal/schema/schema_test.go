package schema

import (
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/internal/backend"
)

func TestRecordsRoundTrip(t *testing.T) {
	b, err := backend.Open(backend.DefaultConfig(filepath.Join(t.TempDir(), "db")))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tx := b.Lock()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(Init(tx))
	must(WriteConsistentIndex(tx, 42, 7))
	must(WriteConfState(tx, &raftpb.ConfState{Voters: []uint64{1, 0x8e9e05c52164694d}}))
	must(WriteClusterVersion(tx, "3.6.0"))
	must(PutMember(tx, 0x8e9e05c52164694d, []byte(`{"id":1}`)))
	must(PutMember(tx, 0xa, []byte(`{"id":10}`)))
	must(RemoveMember(tx, 0xa))
	must(tx.Unlock())

	v := b.Read()
	defer v.End()
	for _, name := range AllBuckets {
		found := false
		for _, n := range v.Buckets() {
			found = found || string(n) == string(name)
		}
		if !found {
			t.Errorf("bucket %s missing", name)
		}
	}
	if i, term, err := ReadConsistentIndex(v); i != 42 || term != 7 || err != nil {
		t.Fatalf("cindex %d %d %v", i, term, err)
	}
	if raw, _ := v.Get(Meta, MetaConfStateKey); string(raw) != `{"voters":[1,10276657743932975437],"auto_leave":false}` {
		t.Fatalf("confState JSON %s", raw)
	}
	cs, err := ReadConfState(v)
	if err != nil || len(cs.Voters) != 2 {
		t.Fatalf("confState %v %v", cs, err)
	}
	if got := ReadStorageVersion(v); got != "3.6.0" {
		t.Fatalf("storage version %q", got)
	}
	if got := ReadClusterVersion(v); got != "3.6.0" {
		t.Fatalf("cluster version %q", got)
	}
	if _, ok := v.Get(Members, []byte("8e9e05c52164694d")); !ok {
		t.Fatal("member key is not unpadded hex")
	}
	if r, _ := v.Get(MembersRemoved, []byte("a")); string(r) != "removed" {
		t.Fatalf("members_removed value %q", r)
	}
	ms, removed, err := ReadMembers(v)
	if err != nil || len(ms) != 1 || !removed[0xa] || string(ms[0x8e9e05c52164694d]) != `{"id":1}` {
		t.Fatalf("members %v removed %v err %v", ms, removed, err)
	}
	if !DefaultIgnores(Meta, MetaTermKey) || DefaultIgnores(Key, MetaTermKey) || DefaultIgnores(Meta, MetaConfStateKey) {
		t.Fatal("DefaultIgnores")
	}
}

// Init writes auth/authRevision 1 where etcd's auth store does (absent or
// 0), and keeps any other value: an etcd backend always has it, and the
// whole-backend hash covers it.
func TestInitWritesAuthRevision(t *testing.T) {
	for _, tc := range []struct {
		name string
		have []byte // nil: absent
		want string
	}{
		{"absent", nil, "\x00\x00\x00\x00\x00\x00\x00\x01"},
		{"zero", make([]byte, 8), "\x00\x00\x00\x00\x00\x00\x00\x01"},
		{"kept", []byte{0, 0, 0, 0, 0, 0, 0, 5}, "\x00\x00\x00\x00\x00\x00\x00\x05"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := backend.Open(backend.DefaultConfig(filepath.Join(t.TempDir(), "db")))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			tx := b.Lock()
			if tc.have != nil {
				if err := tx.CreateBucket(Auth); err != nil {
					t.Fatal(err)
				}
				if err := tx.Put(Auth, AuthRevisionKey, tc.have); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < 2; i++ { // idempotent
				if err := Init(tx); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Unlock(); err != nil {
				t.Fatal(err)
			}
			v := b.Read()
			defer v.End()
			if got, _ := v.Get(Auth, AuthRevisionKey); string(got) != tc.want {
				t.Fatalf("authRevision %x, want %x", got, tc.want)
			}
		})
	}
}
