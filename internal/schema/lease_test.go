package schema

import (
	"encoding/hex"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/internal/backend"
)

// The values etcd 3.6.16 wrote for `etcdctl lease grant 100` and `grant
// 300000` (read from its member/snap/db with bbolt).
func TestLeaseRecordMatchesEtcd(t *testing.T) {
	for _, c := range []struct {
		rec       LeaseRecord
		key, want string
	}{
		{LeaseRecord{ID: 0x390da244671b6f11, TTL: 100}, "390da244671b6f11", "0891deedb8c6c8e886391064"},
		{LeaseRecord{ID: 0x390da244671b6f13, TTL: 300000}, "390da244671b6f13", "0893deedb8c6c8e8863910e0a712"},
	} {
		if got := hex.EncodeToString(c.rec.Marshal()); got != c.want {
			t.Errorf("%+v: value %s, etcd wrote %s", c.rec, got, c.want)
		}
		if got := hex.EncodeToString(LeaseKey(c.rec.ID)); got != c.key {
			t.Errorf("%+v: key %s, etcd wrote %s", c.rec, got, c.key)
		}
		b, _ := hex.DecodeString(c.want)
		if got, err := UnmarshalLease(b); err != nil || got != c.rec {
			t.Errorf("decode %s = %+v, %v; want %+v", c.want, got, err, c.rec)
		}
	}
}

func TestLeaseRecordRoundTrip(t *testing.T) {
	for _, r := range []LeaseRecord{{}, {ID: 1}, {ID: -1, TTL: 5, RemainingTTL: 3}, {ID: 1 << 62, TTL: 9000000000, RemainingTTL: 1}} {
		got, err := UnmarshalLease(r.Marshal())
		if err != nil || got != r {
			t.Errorf("round trip %+v = %+v, %v", r, got, err)
		}
	}
	// an unknown field is skipped; a truncated varint is corrupt
	if got, err := UnmarshalLease([]byte{0x08, 0x05, 0x22, 0x01, 0x00, 0x10, 0x07}); err != nil || got != (LeaseRecord{ID: 5, TTL: 7}) {
		t.Errorf("unknown field: %+v, %v", got, err)
	}
	if _, err := UnmarshalLease([]byte{0x08, 0x80}); err == nil {
		t.Error("truncated record decoded")
	}
}

func TestReadLeases(t *testing.T) {
	b, err := backend.Open(backend.DefaultConfig(filepath.Join(t.TempDir(), "db")))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tx := b.Lock()
	if err := Init(tx); err != nil {
		t.Fatal(err)
	}
	for _, r := range []LeaseRecord{{ID: 7, TTL: 10}, {ID: 2, TTL: 3, RemainingTTL: 1}} {
		if err := tx.Put(Lease, LeaseKey(r.ID), r.Marshal()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Unlock(); err != nil {
		t.Fatal(err)
	}
	v := b.Read()
	defer v.End()
	got, err := ReadLeases(v)
	if err != nil || len(got) != 2 || got[0] != (LeaseRecord{ID: 2, TTL: 3, RemainingTTL: 1}) || got[1] != (LeaseRecord{ID: 7, TTL: 10}) {
		t.Fatalf("ReadLeases = %+v, %v", got, err)
	}
	if n := CountLeases(v); n != 2 {
		t.Fatalf("CountLeases = %d", n)
	}
}
