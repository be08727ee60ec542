package lease

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/schema"
)

// clock is a manual clock: tests move it, never sleep.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// records is a Writer keeping bucket `lease` in a map.
type records map[int64]schema.LeaseRecord

func (r records) Put(bucket, key, value []byte) error {
	if string(bucket) != string(schema.Lease) {
		return fmt.Errorf("put to bucket %s", bucket)
	}
	rec, err := schema.UnmarshalLease(value)
	if err != nil {
		return err
	}
	if string(schema.LeaseKey(rec.ID)) != string(key) {
		return fmt.Errorf("key %x for lease %x", key, rec.ID)
	}
	r[rec.ID] = rec
	return nil
}

func (r records) Delete(bucket, key []byte) error {
	for id := range r {
		if string(schema.LeaseKey(id)) == string(key) {
			delete(r, id)
		}
	}
	return nil
}

func newTest(cfg Config) (*Lessor, *clock, records) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	cfg.Now = c.now
	if cfg.MinTTL == 0 {
		cfg.MinTTL = 2
	}
	return New(cfg), c, records{}
}

func mustGrant(t *testing.T, le *Lessor, w Writer, id, ttl int64) {
	t.Helper()
	if _, err := le.Grant(id, ttl, w); err != nil {
		t.Fatalf("grant %d: %v", id, err)
	}
}

func TestGrantErrorsAndMinimum(t *testing.T) {
	le, _, w := newTest(Config{})
	if _, err := le.Grant(0, 10, w); !errors.Is(err, ErrNotFound) {
		t.Errorf("grant ID 0: %v, want ErrNotFound (etcd's answer)", err)
	}
	if _, err := le.Grant(1, MaxTTL+1, w); !errors.Is(err, ErrTTLTooLarge) {
		t.Errorf("grant TTL max+1: %v", err)
	}
	for _, c := range []struct{ id, ttl, want int64 }{{1, MaxTTL, MaxTTL}, {2, 1, 2}, {3, 0, 2}, {4, -5, 2}, {-7, 30, 30}} {
		got, err := le.Grant(c.id, c.ttl, w)
		if err != nil || got != c.want {
			t.Errorf("grant %d ttl %d = %d, %v; want %d", c.id, c.ttl, got, err, c.want)
		}
		if w[c.id] != (schema.LeaseRecord{ID: c.id, TTL: c.want}) {
			t.Errorf("record of %d: %+v", c.id, w[c.id])
		}
	}
	if _, err := le.Grant(2, 10, w); !errors.Is(err, ErrExists) {
		t.Errorf("grant existing: %v", err)
	}
	if le.Len() != 5 || !le.Lookup(-7) || le.Lookup(5) {
		t.Errorf("len %d, lookups wrong", le.Len())
	}
}

func TestFollowerLeasesLiveForever(t *testing.T) {
	le, c, w := newTest(Config{})
	mustGrant(t, le, w, 1, 5)
	c.advance(time.Hour)
	if got := le.Expired(10); got != nil {
		t.Fatalf("follower expired %v", got)
	}
	if _, err := le.BeginRenew(1); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("follower renew: %v", err)
	}
	st, err := le.TimeToLive(1, false)
	if err != nil || !st.Demoted || st.GrantedTTL != 5 {
		t.Fatalf("follower ttl %+v, %v", st, err)
	}
}

// A new leader extends every lease by the election timeout: none expires
// before its TTL plus that extension from the promotion.
func TestPromoteExtendsAndExpiresOnTime(t *testing.T) {
	le, c, w := newTest(Config{})
	mustGrant(t, le, w, 1, 10)
	mustGrant(t, le, w, 2, 3)
	c.advance(time.Minute) // no leader for a while: nothing ages
	le.Promote(time.Second)
	st, _ := le.TimeToLive(1, false)
	if st.Remaining != 11*time.Second || st.Demoted {
		t.Fatalf("remaining after promote %v", st.Remaining)
	}
	c.advance(4*time.Second - time.Nanosecond)
	if got := le.Expired(10); got != nil {
		t.Fatalf("expired early: %v", got)
	}
	c.advance(time.Nanosecond)
	if got := le.Expired(10); !reflect.DeepEqual(got, []int64{2}) {
		t.Fatalf("expired at 4s: %v", got)
	}
	// handed out again only after the retry interval
	c.advance(DefaultExpiredRetryInterval - time.Nanosecond)
	if got := le.Expired(10); got != nil {
		t.Fatalf("re-handed before retry: %v", got)
	}
	c.advance(time.Nanosecond)
	if got := le.Expired(10); !reflect.DeepEqual(got, []int64{2}) {
		t.Fatalf("after retry: %v", got)
	}
	c.advance(4 * time.Second) // t = 4+3+4 = 11s: 2 is due again (retry at 10s), 1 expires
	if got := le.Expired(10); !reflect.DeepEqual(got, []int64{2, 1}) {
		t.Fatalf("at 11s: %v", got)
	}
	if got := le.Leases(); !reflect.DeepEqual(got, []int64{2, 1}) {
		t.Fatalf("leases by expiry %v", got)
	}
}

func TestRenew(t *testing.T) {
	le, c, w := newTest(Config{})
	le.Promote(0)
	mustGrant(t, le, w, 1, 10)
	c.advance(9 * time.Second)
	r, err := le.BeginRenew(1)
	if err != nil || r.Expired || r.ClearCheckpoint {
		t.Fatalf("begin renew %+v, %v", r, err)
	}
	if ttl, err := le.Renew(1); ttl != 10 || err != nil {
		t.Fatalf("renew = %d, %v", ttl, err)
	}
	c.advance(9 * time.Second)
	if got := le.Expired(10); got != nil {
		t.Fatalf("renewed lease expired: %v", got)
	}
	if _, err := le.BeginRenew(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	// An expired lease is not revived: the renewal waits for the revoke.
	c.advance(time.Second)
	r, err = le.BeginRenew(1)
	if err != nil || !r.Expired {
		t.Fatalf("expired lease: %+v, %v", r, err)
	}
	select {
	case <-r.Revoked:
		t.Fatal("revoked closed early")
	default:
	}
	if keys, err := le.RevokeKeys(1); err != nil || len(keys) != 0 {
		t.Fatalf("revoke keys %v %v", keys, err)
	}
	if err := le.Remove(1, w); err != nil {
		t.Fatal(err)
	}
	<-r.Revoked
	if _, ok := w[1]; ok {
		t.Fatal("record left after Remove")
	}
	if _, err := le.Renew(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("renew after revoke: %v", err)
	}
	// ... or for the demotion.
	mustGrant(t, le, w, 3, 2)
	c.advance(2 * time.Second)
	r, _ = le.BeginRenew(3)
	le.Demote()
	<-r.Demoted
	if _, err := le.Renew(3); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("renew after demote: %v", err)
	}
}

func TestKeysAttachDetachRevoke(t *testing.T) {
	le, _, w := newTest(Config{})
	mustGrant(t, le, w, 1, 10)
	for _, k := range []string{"b", "a", "c"} {
		le.Attach(1, []byte(k))
	}
	le.Attach(99, []byte("x")) // unknown lease: ignored
	le.Detach(1, []byte("c"))
	st, _ := le.TimeToLive(1, true)
	if fmt.Sprintf("%q", st.Keys) != `["a" "b"]` {
		t.Fatalf("keys %q", st.Keys)
	}
	keys, err := le.RevokeKeys(1)
	if err != nil || !reflect.DeepEqual(keys, []string{"a", "b"}) {
		t.Fatalf("revoke keys %v %v", keys, err)
	}
	if _, err := le.RevokeKeys(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if err := le.Remove(2, w); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove unknown: %v", err)
	}
	if _, err := le.TimeToLive(2, true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ttl unknown: %v", err)
	}
}

func TestCheckpoints(t *testing.T) {
	le, c, w := newTest(Config{Checkpointing: true, CheckpointInterval: 10 * time.Second})
	le.Promote(0)
	mustGrant(t, le, w, 1, 100) // checkpointed every 10 s
	mustGrant(t, le, w, 2, 5)   // shorter than the interval: never
	if got := le.DueCheckpoints(10); got != nil {
		t.Fatalf("due at once: %v", got)
	}
	c.advance(10*time.Second - time.Millisecond)
	if got := le.DueCheckpoints(10); got != nil {
		t.Fatalf("due early: %v", got)
	}
	c.advance(time.Millisecond + 300*time.Millisecond)
	got := le.DueCheckpoints(10)
	if len(got) != 1 || got[0].ID != 1 || got[0].Remaining_TTL != 90 { // 89.7 s rounded up
		t.Fatalf("due: %v", got)
	}
	// Applying it records the remaining TTL, persists it and schedules the next.
	if err := le.Checkpoint(1, 90, true, w); err != nil {
		t.Fatal(err)
	}
	if w[1].RemainingTTL != 90 {
		t.Fatalf("record %+v", w[1])
	}
	if err := le.Checkpoint(42, 1, true, w); err != nil || len(w) != 2 {
		t.Fatalf("unknown lease checkpoint: %v, %v", err, w)
	}
	// A new leader starts from the checkpoint, not the full TTL.
	le.Demote()
	le.Promote(time.Second)
	st, _ := le.TimeToLive(1, false)
	if st.Remaining != 91*time.Second {
		t.Fatalf("remaining after promote %v", st.Remaining)
	}
	// Renewing it needs the checkpoint cleared first.
	r, err := le.BeginRenew(1)
	if err != nil || !r.ClearCheckpoint {
		t.Fatalf("renew of checkpointed lease: %+v, %v", r, err)
	}
	if err := le.Checkpoint(1, 0, true, w); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := le.Renew(1); ttl != 100 {
		t.Fatalf("renew ttl %d", ttl)
	}
	if st, _ := le.TimeToLive(1, false); st.Remaining != 100*time.Second || w[1].RemainingTTL != 0 {
		t.Fatalf("after clear: %v, %+v", st.Remaining, w[1])
	}
}

// Without the gate no checkpoint is ever due, and a checkpointed remaining
// TTL read from an etcd data dir still shortens the lease (etcd's rule).
func TestCheckpointsOff(t *testing.T) {
	le, c, w := newTest(Config{CheckpointInterval: time.Second})
	le.Recover([]schema.LeaseRecord{{ID: 1, TTL: 100, RemainingTTL: 7}, {ID: 2, TTL: 1}})
	le.Promote(0)
	c.advance(time.Hour)
	if got := le.DueCheckpoints(10); got != nil {
		t.Fatalf("due with checkpoints off: %v", got)
	}
	le.Demote()
	le.Promote(0)
	if st, _ := le.TimeToLive(1, false); st.Remaining != 7*time.Second || st.GrantedTTL != 100 {
		t.Fatalf("recovered lease %+v", st)
	}
	if st, _ := le.TimeToLive(2, false); st.GrantedTTL != 2 {
		t.Fatalf("recovered TTL under the minimum: %+v", st)
	}
	if r, _ := le.BeginRenew(1); r.ClearCheckpoint {
		t.Fatal("clear asked with checkpoints off")
	}
	_ = w
}

// With many leases expiring together, a new leader spreads their expiries
// so no second holds more than 3/4 of the revoke rate, and moves none
// earlier.
func TestPromoteSpreadsPiledUpExpiries(t *testing.T) {
	const rate = 8
	le, c, w := newTest(Config{RevokeRate: rate})
	for id := int64(1); id <= 40; id++ {
		mustGrant(t, le, w, id, 10)
	}
	c.advance(time.Minute)
	le.Promote(time.Second)
	perSecond := map[int64]int{}
	for id := int64(1); id <= 40; id++ {
		st, _ := le.TimeToLive(id, false)
		if st.Remaining < 11*time.Second {
			t.Fatalf("lease %d moved earlier: %v", id, st.Remaining)
		}
		perSecond[int64(st.Remaining/time.Second)]++
	}
	for s, n := range perSecond {
		if n > 3*rate/4 {
			t.Errorf("%d expiries in second %d: %v", n, s, perSecond)
		}
	}
}

func TestRecoverReplacesEverything(t *testing.T) {
	le, _, w := newTest(Config{})
	le.Promote(0)
	mustGrant(t, le, w, 1, 10)
	le.Attach(1, []byte("k"))
	r, _ := le.BeginRenew(1)
	le.Recover([]schema.LeaseRecord{{ID: 5, TTL: 60}})
	if le.Lookup(1) || !le.Lookup(5) {
		t.Fatal("recover kept an old lease")
	}
	st, _ := le.TimeToLive(5, true)
	if len(st.Keys) != 0 || !st.Demoted {
		t.Fatalf("recovered %+v", st)
	}
	_ = r
}

// Granting and revoking many leases leaves nothing behind in the queues.
func TestGrantRevokeLeavesNothing(t *testing.T) {
	le, c, w := newTest(Config{Checkpointing: true, CheckpointInterval: time.Second})
	le.Promote(0)
	for id := int64(1); id <= 10000; id++ {
		mustGrant(t, le, w, id, 60)
		le.Attach(id, []byte(fmt.Sprint("k", id)))
		if _, err := le.RevokeKeys(id); err != nil {
			t.Fatal(err)
		}
		if err := le.Remove(id, w); err != nil {
			t.Fatal(err)
		}
	}
	c.advance(2 * time.Second)
	if got := le.DueCheckpoints(MaxCheckpointBatch); len(got) != 0 {
		t.Fatalf("checkpoints of revoked leases: %d", len(got))
	}
	if le.Len() != 0 || len(le.expiry) != 0 || len(le.checkpoints) != 0 || len(w) != 0 {
		t.Fatalf("left: %d leases, %d queued, %d checkpoints, %d records", le.Len(), len(le.expiry), len(le.checkpoints), len(w))
	}
}
