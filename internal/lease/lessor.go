package lease

import (
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/internal/failpoint"
	"github.com/cairnkv/cairn/internal/schema"
)

// Sentinel errors. Their texts are etcd's: the peer endpoints send them in
// HTTP bodies, which etcd members read.
var (
	// ErrNotFound: no lease with that ID (also Grant of ID 0, as etcd).
	ErrNotFound = errors.New("lease not found")
	// ErrExists: Grant of an ID in use.
	ErrExists = errors.New("lease already exists")
	// ErrTTLTooLarge: Grant of a TTL above MaxTTL.
	ErrTTLTooLarge = errors.New("too large lease TTL")
	// ErrNotPrimary: a renewal or expiry question asked of a lessor that is
	// not the leader's.
	ErrNotPrimary = errors.New("not a primary lessor")
)

// MaxTTL is the largest TTL a lease may be granted, in seconds (etcd's).
const MaxTTL = 9000000000

// Defaults of Config, etcd's.
const (
	DefaultCheckpointInterval   = 5 * time.Minute
	DefaultExpiredRetryInterval = 3 * time.Second
	DefaultRevokeRate           = 1000
	// MaxCheckpointBatch is the most checkpoints one LeaseCheckpoint
	// request carries.
	MaxCheckpointBatch = 1000
)

// Config configures a Lessor.
type Config struct {
	// MinTTL is the smallest TTL granted, in seconds; shorter requests get
	// it. etcd: ceil((3*election ticks/2) * heartbeat), 2 s by default.
	MinTTL int64
	// Checkpointing turns on lease checkpoints (etcd's LeaseCheckpoint
	// feature gate): the primary schedules them and DueCheckpoints reports
	// them; a renewal of a checkpointed lease must first clear its
	// remaining TTL (Renewal.ClearCheckpoint).
	Checkpointing bool
	// CheckpointInterval is the time between checkpoints of a lease.
	// 0: DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// ExpiredRetryInterval is how long an expired lease handed out by
	// Expired waits before it is handed out again if still not revoked.
	// 0: DefaultExpiredRetryInterval (the server uses its request timeout).
	ExpiredRetryInterval time.Duration
	// RevokeRate is the number of leases the primary means to revoke per
	// second; Promote spreads expiries so no second holds more than 3/4 of
	// it. 0: DefaultRevokeRate.
	RevokeRate int
	// Now is the clock. nil: time.Now.
	Now func() time.Time
	// Metrics, when set, counts grants, revocations and renewals.
	Metrics *Metrics
}

// Writer is where the lessor persists lease records: the backend write
// transaction of the entry being applied (*backend.WriteTx).
type Writer interface {
	Put(bucket, key, value []byte) error
	Delete(bucket, key []byte) error
}

// lease is one lease. Fields are guarded by Lessor.mu.
type lease struct {
	id int64
	// ttl is the granted TTL in seconds. Invariant: ttl >= MinTTL.
	ttl int64
	// remaining is the last checkpointed remaining TTL in seconds; 0: none.
	remaining int64
	// expiry is when the lease expires; zero: never (not primary).
	expiry time.Time
	// keys are the attached keys; nil when none.
	keys map[string]struct{}
	// revoked is closed when the lease is removed; made on demand.
	revoked chan struct{}
	// qidx is the position in the expiry queue, -1 when not in it; qtime
	// is the time it is queued for.
	qidx  int
	qtime time.Time
}

// left is the TTL a refresh starts from: the checkpointed remaining TTL
// when there is one, else the granted TTL.
func (l *lease) left() int64 {
	if l.remaining > 0 {
		return l.remaining
	}
	return l.ttl
}

func (l *lease) refresh(now time.Time, extend time.Duration) {
	l.expiry = now.Add(extend + time.Duration(l.left())*time.Second)
}

// remainingAt is the time left at now; math.MaxInt64 when forever.
func (l *lease) remainingAt(now time.Time) time.Duration {
	if l.expiry.IsZero() {
		return time.Duration(math.MaxInt64)
	}
	return l.expiry.Sub(now)
}

func (l *lease) record() schema.LeaseRecord {
	return schema.LeaseRecord{ID: l.id, TTL: l.ttl, RemainingTTL: l.remaining}
}

// Lessor holds the member's leases. See the package documentation for who
// calls what.
type Lessor struct {
	cfg Config
	now func() time.Time

	mu     sync.Mutex
	leases map[int64]*lease
	// demoted is non-nil while this lessor is primary, and closed when it
	// is demoted.
	demoted     chan struct{}
	expiry      expiryQueue
	checkpoints checkpointQueue
}

// New returns an empty lessor that is not primary. Load leases with Recover.
func New(cfg Config) *Lessor {
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.ExpiredRetryInterval <= 0 {
		cfg.ExpiredRetryInterval = DefaultExpiredRetryInterval
	}
	if cfg.RevokeRate <= 0 {
		cfg.RevokeRate = DefaultRevokeRate
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Lessor{cfg: cfg, now: now, leases: map[int64]*lease{}}
}

// Recover replaces every lease with the records read from bucket `lease`
// (schema.ReadLeases), at start and after a snapshot replaced the backend.
// Recovered leases have no keys (the store attaches them next) and live
// forever until Promote; TTLs under MinTTL are raised to it in memory.
func (le *Lessor) Recover(recs []schema.LeaseRecord) {
	le.mu.Lock()
	defer le.mu.Unlock()
	for _, l := range le.leases {
		if l.revoked != nil {
			close(l.revoked)
		}
	}
	le.leases = make(map[int64]*lease, len(recs))
	le.expiry.reset()
	le.checkpoints = nil
	for _, r := range recs {
		ttl := max(r.TTL, le.cfg.MinTTL)
		le.leases[r.ID] = &lease{id: r.ID, ttl: ttl, remaining: r.RemainingTTL, qidx: -1}
	}
}

// Grant creates lease id with ttl seconds (raised to MinTTL) and persists
// it through w. It returns the granted TTL. Apply goroutine.
func (le *Lessor) Grant(id, ttl int64, w Writer) (int64, error) {
	if id == 0 {
		return 0, ErrNotFound
	}
	if ttl > MaxTTL {
		return 0, ErrTTLTooLarge
	}
	le.mu.Lock()
	defer le.mu.Unlock()
	if _, ok := le.leases[id]; ok {
		return 0, ErrExists
	}
	l := &lease{id: id, ttl: max(ttl, le.cfg.MinTTL), qidx: -1}
	if err := putRecord(w, l); err != nil {
		return 0, err
	}
	le.leases[id] = l
	if le.demoted != nil {
		now := le.now()
		l.refresh(now, 0)
		le.expiry.set(l, l.expiry)
		le.scheduleCheckpoint(l, now)
	}
	le.cfg.Metrics.granted(l.ttl)
	return l.ttl, nil
}

func putRecord(w Writer, l *lease) error {
	if err := w.Put(schema.Lease, schema.LeaseKey(l.id), l.record().Marshal()); err != nil {
		return fmt.Errorf("persist lease %016x: %w", l.id, err)
	}
	return nil
}

// RevokeKeys returns the keys attached to lease id, sorted (the order every
// member deletes them in, so their backends stay identical), or
// ErrNotFound. It changes nothing: the caller deletes the keys, then calls
// Remove, in one backend transaction. Apply goroutine.
func (le *Lessor) RevokeKeys(id int64) ([]string, error) {
	le.mu.Lock()
	defer le.mu.Unlock()
	l := le.leases[id]
	if l == nil {
		return nil, ErrNotFound
	}
	keys := make([]string, 0, len(l.keys))
	for k := range l.keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if failpoint.On(failpoint.LeaseRevokeLeavesKey) { // test-only hook: keys left behind
		keys = slices.DeleteFunc(keys, func(k string) bool { return strings.HasSuffix(k, "0") })
	}
	return keys, nil
}

// Remove forgets lease id and deletes its record through w; renewals
// waiting on it learn it is gone. Apply goroutine, after RevokeKeys.
func (le *Lessor) Remove(id int64, w Writer) error {
	le.mu.Lock()
	defer le.mu.Unlock()
	l := le.leases[id]
	if l == nil {
		return ErrNotFound
	}
	if err := w.Delete(schema.Lease, schema.LeaseKey(id)); err != nil {
		return fmt.Errorf("delete lease %016x: %w", id, err)
	}
	delete(le.leases, id)
	le.expiry.remove(l)
	if l.revoked != nil {
		close(l.revoked)
	}
	le.cfg.Metrics.revoked()
	return nil
}

// Checkpoint records lease id's remaining TTL (an unknown ID is ignored, as
// etcd does). persist writes the record through w (etcd: always once the
// cluster version is 3.6, or with the LeaseCheckpointPersist gate). On the
// primary the next checkpoint is scheduled. Apply goroutine.
func (le *Lessor) Checkpoint(id, remaining int64, persist bool, w Writer) error {
	le.mu.Lock()
	defer le.mu.Unlock()
	l := le.leases[id]
	if l == nil {
		return nil
	}
	l.remaining = remaining
	if persist {
		if err := putRecord(w, l); err != nil {
			return err
		}
	}
	if le.demoted != nil {
		le.scheduleCheckpoint(l, le.now())
	}
	return nil
}

// scheduleCheckpoint queues a checkpoint of l one interval from now when
// checkpoints are on and l has more than an interval to live. le.mu held.
func (le *Lessor) scheduleCheckpoint(l *lease, now time.Time) {
	if !le.cfg.Checkpointing {
		return
	}
	if l.left() > int64(le.cfg.CheckpointInterval.Seconds()) {
		heap.Push(&le.checkpoints, checkpointItem{id: l.id, at: now.Add(le.cfg.CheckpointInterval)})
	}
}

// Attach records that key is attached to lease id; an unknown ID is
// ignored (etcd logs it). For mvcc.Lessor.
func (le *Lessor) Attach(id int64, key []byte) {
	le.mu.Lock()
	defer le.mu.Unlock()
	l := le.leases[id]
	if l == nil {
		return
	}
	if l.keys == nil {
		l.keys = make(map[string]struct{}, 1)
	}
	l.keys[string(key)] = struct{}{}
}

// Detach records that key left lease id. For mvcc.Lessor.
func (le *Lessor) Detach(id int64, key []byte) {
	le.mu.Lock()
	defer le.mu.Unlock()
	if l := le.leases[id]; l != nil {
		delete(l.keys, string(key))
	}
}

// Lookup reports whether lease id exists. For txn.Lessor.
func (le *Lessor) Lookup(id int64) bool {
	le.mu.Lock()
	defer le.mu.Unlock()
	return le.leases[id] != nil
}

// Len is the number of leases.
func (le *Lessor) Len() int {
	le.mu.Lock()
	defer le.mu.Unlock()
	return len(le.leases)
}

// IsPrimary reports whether this lessor is the leader's.
func (le *Lessor) IsPrimary() bool {
	le.mu.Lock()
	defer le.mu.Unlock()
	return le.demoted != nil
}

// Promote makes this lessor primary: every lease expires extend plus its
// remaining (checkpointed) or full TTL from now. With RevokeRate leases or
// more, expiries that would pile up beyond 3/4 of the revoke rate in one
// second are spread out, as etcd does.
func (le *Lessor) Promote(extend time.Duration) {
	le.mu.Lock()
	defer le.mu.Unlock()
	if le.demoted == nil {
		le.demoted = make(chan struct{})
	}
	now := le.now()
	for _, l := range le.leases {
		l.refresh(now, extend)
		le.expiry.set(l, l.expiry)
		le.scheduleCheckpoint(l, now)
	}
	if len(le.leases) < le.cfg.RevokeRate {
		return
	}
	ls := le.byExpiry()
	base := ls[0].remainingAt(now)
	next := base + time.Second
	expires := 0
	target := (3 * le.cfg.RevokeRate) / 4
	for _, l := range ls {
		rem := l.remainingAt(now)
		if rem > next {
			// a new one-second window starts at this lease
			base, next, expires = rem, rem+time.Second, 1
			continue
		}
		expires++
		if expires <= target {
			continue
		}
		// Push this lease back so its window holds no more than target
		// expiries; a lease already later in the window moves less.
		delay := time.Duration(float64(time.Second)*(float64(expires)/float64(target)) - float64(rem-base))
		next = base + delay
		l.refresh(now, delay+extend)
		le.expiry.set(l, l.expiry)
		le.scheduleCheckpoint(l, now)
	}
}

// Demote makes this lessor a follower's: leases live forever, nothing is
// queued, and renewals waiting on an expired lease learn ErrNotPrimary.
func (le *Lessor) Demote() {
	le.mu.Lock()
	defer le.mu.Unlock()
	for _, l := range le.leases {
		l.expiry = time.Time{}
	}
	le.expiry.reset()
	le.checkpoints = nil
	if le.demoted != nil {
		close(le.demoted)
		le.demoted = nil
	}
}

// Renewal is the first half of a renewal (BeginRenew).
type Renewal struct {
	// Expired: the lease has expired and its revocation is pending. The
	// caller waits until Revoked (the lease is gone: ErrNotFound) or
	// Demoted (ErrNotPrimary) closes, as etcd does, rather than revive it.
	Expired bool
	Revoked <-chan struct{}
	Demoted <-chan struct{}
	// ClearCheckpoint: checkpoints are on and the lease carries a
	// checkpointed remaining TTL; the caller proposes a checkpoint of 0
	// for it (so the renewal's full TTL survives a leader change) before
	// Renew.
	ClearCheckpoint bool
}

// BeginRenew checks that lease id can be renewed here: ErrNotPrimary on a
// follower, ErrNotFound for an unknown lease.
func (le *Lessor) BeginRenew(id int64) (Renewal, error) {
	le.mu.Lock()
	defer le.mu.Unlock()
	if le.demoted == nil {
		return Renewal{}, ErrNotPrimary
	}
	l := le.leases[id]
	if l == nil {
		return Renewal{}, ErrNotFound
	}
	if l.remainingAt(le.now()) <= 0 {
		if l.revoked == nil {
			l.revoked = make(chan struct{})
		}
		return Renewal{Expired: true, Revoked: l.revoked, Demoted: le.demoted}, nil
	}
	return Renewal{ClearCheckpoint: le.cfg.Checkpointing && l.remaining > 0}, nil
}

// Renew restarts lease id's TTL from now and returns its granted TTL.
func (le *Lessor) Renew(id int64) (int64, error) {
	le.mu.Lock()
	defer le.mu.Unlock()
	if le.demoted == nil {
		return -1, ErrNotPrimary
	}
	l := le.leases[id]
	if l == nil {
		return -1, ErrNotFound
	}
	if !failpoint.On(failpoint.LeaseExpireEarly) { // test-only hook: the renewal is lost
		l.refresh(le.now(), 0)
		le.expiry.set(l, l.expiry)
	}
	le.cfg.Metrics.renewed()
	return l.ttl, nil
}

// Expired returns up to limit leases of the primary that have expired. Each
// is handed out again only after ExpiredRetryInterval if it is still there
// (its revocation failed or is slow). nil when not primary.
func (le *Lessor) Expired(limit int) []int64 {
	le.mu.Lock()
	defer le.mu.Unlock()
	if le.demoted == nil {
		return nil
	}
	now := le.now()
	var out []int64
	for len(le.expiry) > 0 && len(out) < limit {
		l := le.expiry[0]
		if now.Before(l.qtime) {
			break
		}
		le.expiry.set(l, now.Add(le.cfg.ExpiredRetryInterval))
		if l.remainingAt(now) <= 0 {
			out = append(out, l.id)
		}
	}
	return out
}

// DueCheckpoints returns up to limit checkpoints that are due on the
// primary: for each lease whose scheduled time has come, still alive and
// with less than its full TTL left, its remaining TTL rounded up to a
// second. nil when not primary or checkpoints are off.
func (le *Lessor) DueCheckpoints(limit int) []*pb.LeaseCheckpoint {
	le.mu.Lock()
	defer le.mu.Unlock()
	if le.demoted == nil || !le.cfg.Checkpointing {
		return nil
	}
	now := le.now()
	var out []*pb.LeaseCheckpoint
	for len(le.checkpoints) > 0 && len(out) < limit {
		it := le.checkpoints[0]
		if it.at.After(now) {
			break
		}
		heap.Pop(&le.checkpoints)
		l := le.leases[it.id]
		if l == nil || !now.Before(l.expiry) {
			continue
		}
		rem := int64(math.Ceil(l.expiry.Sub(now).Seconds()))
		if rem >= l.ttl {
			continue
		}
		out = append(out, &pb.LeaseCheckpoint{ID: it.id, Remaining_TTL: rem})
	}
	return out
}

// Status is what TimeToLive reports of a lease.
type Status struct {
	ID int64
	// GrantedTTL is the granted TTL in seconds.
	GrantedTTL int64
	// Remaining is the time left; math.MaxInt64 when the lease lives
	// forever (this lessor is not primary).
	Remaining time.Duration
	// Keys are the attached keys, sorted, when asked for.
	Keys [][]byte
	// Demoted: the lease lives forever here; a leader reporting it must
	// answer "leader changed" instead.
	Demoted bool
}

// TimeToLive reports lease id, with its keys when keys is set; ErrNotFound
// for an unknown lease.
func (le *Lessor) TimeToLive(id int64, keys bool) (Status, error) {
	le.mu.Lock()
	defer le.mu.Unlock()
	l := le.leases[id]
	if l == nil {
		return Status{}, ErrNotFound
	}
	st := Status{ID: id, GrantedTTL: l.ttl, Remaining: l.remainingAt(le.now()), Demoted: l.expiry.IsZero()}
	if keys {
		st.Keys = make([][]byte, 0, len(l.keys))
		for k := range l.keys {
			st.Keys = append(st.Keys, []byte(k))
		}
		slices.SortFunc(st.Keys, bytes.Compare)
	}
	return st, nil
}

// Leases returns every lease ID, soonest expiry first (ties by ID).
func (le *Lessor) Leases() []int64 {
	le.mu.Lock()
	defer le.mu.Unlock()
	ls := le.byExpiry()
	out := make([]int64, len(ls))
	for i, l := range ls {
		out[i] = l.id
	}
	return out
}

// byExpiry returns the leases sorted by expiry, forever last, ties by ID.
// le.mu held.
func (le *Lessor) byExpiry() []*lease {
	ls := make([]*lease, 0, len(le.leases))
	for _, l := range le.leases {
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool {
		a, b := ls[i], ls[j]
		switch {
		case a.expiry.Equal(b.expiry):
			return a.id < b.id
		case a.expiry.IsZero():
			return false
		case b.expiry.IsZero():
			return true
		}
		return a.expiry.Before(b.expiry)
	})
	return ls
}
