// Package mvcc is etcd's multi-version key-value store on the backend:
// revisions, an in-memory key index, Range/Put/DeleteRange, compaction and
// the HashKV hash, with etcd 3.6's on-disk format in bucket `key`.
//
// # Threading
//
//   - Write transactions (Store.Write … WriteTxn.End), Compact and
//     SetConsistentIndex come from one goroutine at a time (cairn's apply
//     goroutine). A write transaction holds the backend write lock until End.
//   - Read transactions (Store.Read … ReadTxn.End), Rev, CompactRev, Hash and
//     HashByRev may be called from any number of goroutines.
//   - Physical compaction runs on a goroutine per Compact call, each waiting
//     for the previous one; it takes the backend write lock in batches.
//   - A goroutine must not open a read transaction while it holds a write
//     transaction, nor call Compact while holding either.
package mvcc

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/schema"
)

// Lessor is what the store needs from the lease subsystem: it reports the
// keys that gain or lose a lease. Both are called on the goroutine that runs
// the write transaction (and at New for every live leased key); they must
// not call back into the store. The key slice must not be modified.
type Lessor interface {
	Attach(id int64, key []byte)
	Detach(id int64, key []byte)
}

// Config configures a Store. Build it with DefaultConfig.
type Config struct {
	// CompactionBatchLimit is the number of revisions deleted per backend
	// write lock during physical compaction. Default 1000; must be > 0.
	CompactionBatchLimit int
	// CompactionSleepInterval is the pause between compaction batches.
	// Default 10ms; must be >= 0.
	CompactionSleepInterval time.Duration
	// Lessor, when set, is told about lease attachment changes.
	Lessor Lessor
	// OnEvents, when set, is called by WriteTxn.End with the revision and
	// the events of the transaction, on the writer's goroutine, after the
	// revision is visible to readers. The callee owns the KeyValues the
	// events point to, not the evs slice itself, which the store reuses
	// after the call.
	OnEvents func(rev int64, evs []mvccpb.Event)
	// Logger for operational logs. Default zap.NewNop().
	Logger *zap.Logger
}

// DefaultConfig returns etcd's defaults.
func DefaultConfig() Config {
	return Config{CompactionBatchLimit: 1000, CompactionSleepInterval: 10 * time.Millisecond, Logger: zap.NewNop()}
}

// Validate reports the first invalid field without changing c.
func (c Config) Validate() error {
	if c.CompactionBatchLimit <= 0 {
		return fmt.Errorf("mvcc config: CompactionBatchLimit %d must be > 0", c.CompactionBatchLimit)
	}
	if c.CompactionSleepInterval < 0 {
		return fmt.Errorf("mvcc config: CompactionSleepInterval %v must be >= 0", c.CompactionSleepInterval)
	}
	return nil
}

// KeyValueHash is the result of HashByRev, as etcd's.
type KeyValueHash struct {
	Hash            uint32
	CompactRevision int64
	Revision        int64
}

// Store is the multi-version key-value store.
type Store struct {
	cfg Config
	lg  *zap.Logger
	b   *backend.Backend
	idx *treeIndex

	// mu is held shared by every read and write transaction and exclusively
	// while the compaction revision changes, so no transaction straddles it.
	mu sync.RWMutex
	// currentRev is the revision of the last ended write transaction.
	// Invariant: currentRev >= 1 and currentRev >= compactRev.
	currentRev atomic.Int64
	// compactRev is the last scheduled compaction revision, -1 if none.
	// Changed only with mu held exclusively.
	compactRev atomic.Int64

	// w is the single write transaction, reused. Owned by the writer.
	w WriteTxn
	// ci and term are the consistent index and term last set by the writer;
	// ciDirty says the pre-commit hook has not written them yet. Protected
	// by the backend write lock.
	ci, term uint64
	ciDirty  bool
	ciPub    atomic.Uint64

	// compactMu protects lastCompaction and hashes.
	compactMu sync.Mutex
	// lastCompaction is closed when the newest scheduled compaction ends.
	lastCompaction chan struct{}
	// hashes are the last compaction hashes, by increasing revision.
	hashes []KeyValueHash
	stopc  chan struct{}
	closed atomic.Bool
}

const maxHashes = 10

// New opens the store on b: it creates the schema buckets when missing,
// rebuilds the key index from bucket `key`, attaches leases and resumes an
// unfinished compaction. b must outlive the store.
func New(b *backend.Backend, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	s := &Store{cfg: cfg, lg: lg, b: b, idx: newTreeIndex(), stopc: make(chan struct{})}
	s.w.s = s
	done := make(chan struct{})
	close(done)
	s.lastCompaction = done
	s.compactRev.Store(-1)
	s.currentRev.Store(1)

	tx := b.Lock()
	err := schema.Init(tx)
	if uerr := tx.Unlock(); err == nil {
		err = uerr
	}
	if err != nil {
		return nil, fmt.Errorf("mvcc: %w", err)
	}
	b.AddPreCommitHook(s.preCommit)
	if err := s.restore(); err != nil {
		return nil, err
	}
	return s, nil
}

// preCommit writes the consistent index and term into the transaction being
// committed, so they always match the data on disk.
func (s *Store) preCommit(tx *backend.WriteTx) error {
	if !s.ciDirty {
		return nil
	}
	s.ciDirty = false
	return schema.WriteConsistentIndex(tx, s.ci, s.term)
}

func readCompactRev(v schema.Reader, key []byte) (int64, bool) {
	b, ok := v.Get(schema.Meta, key)
	if !ok || len(b) < 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b)), true
}

func (s *Store) restore() error {
	start := time.Now()
	v := s.b.Read()
	defer v.End()
	ci, term, err := schema.ReadConsistentIndex(v)
	if err != nil {
		return fmt.Errorf("mvcc restore: %w", err)
	}
	s.ci, s.term = ci, term
	s.ciPub.Store(ci)
	if fin, ok := readCompactRev(v, schema.FinishedCompactKey); ok {
		s.compactRev.Store(fin)
	}
	scheduled, hasScheduled := readCompactRev(v, schema.ScheduledCompactKey)

	byKey := make(map[string]*keyIndex)
	cur := int64(1)
	var derr error
	v.ForEach(schema.Key, func(k, val []byte) bool {
		if len(k) != revBytesLen && !isTombstone(k) {
			derr = fmt.Errorf("mvcc restore: key %x: %w", k, ErrCorrupt)
			return false
		}
		rev := bytesToRev(k)
		cur = rev.Main
		f, err := decodeKV(val)
		if err != nil {
			derr = fmt.Errorf("mvcc restore: revision %v: %w", rev, err)
			return false
		}
		ki := byKey[string(f.key)]
		if isTombstone(k) {
			if ki == nil {
				// Every earlier revision of the key was compacted away: the
				// tombstone still marks a deletion a watcher at its revision
				// must see (etcd #19179), so it is indexed as a generation
				// of its own and a compaction at its revision keeps it.
				ki = &keyIndex{}
				ki.restore(Revision{}, rev, 1)
				ki.generations = append(ki.generations, generation{})
				k := string(f.key)
				byKey[k] = ki
				s.idx.insert(k, ki)
				return true
			}
			if err := ki.tombstone(rev); err != nil {
				s.lg.Warn("tombstone encountered error", zap.Error(err))
			}
			return true
		}
		if ki == nil {
			ki = &keyIndex{}
			ki.restore(Revision{Main: f.create}, rev, f.version)
			k := string(f.key)
			byKey[k] = ki
			s.idx.insert(k, ki)
		} else {
			ki.put(rev)
		}
		ki.lease = f.lease
		return true
	})
	if derr != nil {
		return derr
	}
	if c := s.compactRev.Load(); cur < c {
		cur = c
	}
	s.currentRev.Store(cur)
	if s.cfg.Lessor != nil {
		s.idx.ascend(func(it indexItem) bool {
			if it.ki.lease != 0 {
				s.cfg.Lessor.Attach(it.ki.lease, []byte(it.key))
			}
			return true
		})
	}
	s.lg.Info("kvstore restored", zap.Int64("current-rev", cur), zap.Int("keys", len(byKey)), zap.Duration("took", time.Since(start)))
	if hasScheduled && scheduled > s.compactRev.Load() {
		s.lg.Info("resume scheduled compaction", zap.Int64("scheduled-compact-revision", scheduled))
		if _, err := s.compactLocked(scheduled, 0, 0); err != nil {
			s.lg.Warn("compaction encountered error", zap.Error(err))
		}
	}
	return nil
}

// Reload rebuilds the store from its backend after the backend's file was
// replaced (Backend.Replace, installing a snapshot from the leader): the key
// index, the revisions, the compaction state and the consistent index are
// read again, and a compaction the new file had scheduled is resumed. Reads
// wait while it runs. Writer goroutine, not holding a transaction; no
// compaction may be running (wait on WaitCompaction before replacing the
// backend), since it would go on deleting in the new file.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idx.mu.Lock()
	s.idx.tree.Clear(false)
	s.compactRev.Store(-1)
	s.currentRev.Store(1)
	tx := s.b.Lock()
	s.ciDirty = false
	_ = tx.Unlock() // no writes
	s.compactMu.Lock()
	s.hashes = nil
	s.compactMu.Unlock()
	err := s.restore()
	s.idx.mu.Unlock()
	return err
}

// Rev returns the revision of the last ended write transaction. Any
// goroutine.
func (s *Store) Rev() int64 { return s.currentRev.Load() }

// CompactRev returns the last scheduled compaction revision, -1 if none.
// Any goroutine.
func (s *Store) CompactRev() int64 { return s.compactRev.Load() }

// ConsistentIndex returns the last consistent index set (or read at New).
// Any goroutine.
func (s *Store) ConsistentIndex() uint64 { return s.ciPub.Load() }

// ConsistentIndexTerm returns the consistent index and term as set by the
// writer. Writer goroutine only.
func (s *Store) ConsistentIndexTerm() (index, term uint64) { return s.ci, s.term }

// Backend returns the store's backend.
func (s *Store) Backend() *backend.Backend { return s.b }

// Close stops physical compaction (an interrupted one resumes at the next
// New) and waits for it. It does not close the backend. Any goroutine.
func (s *Store) Close() {
	if s.closed.Swap(true) {
		return
	}
	close(s.stopc)
	s.compactMu.Lock()
	last := s.lastCompaction
	s.compactMu.Unlock()
	<-last
}

// RangeOptions are the options of a Range.
type RangeOptions struct {
	// Limit caps the number of KeyValues returned (<= 0: no limit).
	Limit int64
	// Rev is the revision to read at (<= 0: the current revision).
	Rev int64
	// Count returns only the number of keys.
	Count bool
	// MetaOnly returns KeyValues with only Key, CreateRevision,
	// ModRevision and Version, read from the index without touching the
	// backend (a transaction's compare of those targets). Their Keys
	// share the index's memory: read-only.
	MetaOnly bool
}

// RangeResult is the result of a Range.
type RangeResult struct {
	KVs   []mvccpb.KeyValue
	Count int
	// Rev is the current revision of the read (not ro.Rev).
	Rev int64
}

// normEnd maps etcd's range end conventions: nil → the single key; "\x00"
// or empty non-nil → no upper bound (returned as empty non-nil).
func normEnd(end []byte) []byte {
	if len(end) == 1 && end[0] == 0 {
		return []byte{}
	}
	return end
}

// rangeKeys is the Range shared by read and write transactions; get reads a
// revision's value. curRev is the transaction's current revision.
func (s *Store) rangeKeys(key, end []byte, curRev int64, ro RangeOptions, get func([]byte) ([]byte, bool)) (RangeResult, error) {
	rev := ro.Rev
	if rev > curRev {
		return RangeResult{Count: -1, Rev: curRev}, fmt.Errorf("range at %d (current %d): %w", rev, curRev, ErrFutureRev)
	}
	if rev <= 0 {
		rev = curRev
	}
	if c := s.compactRev.Load(); rev < c {
		return RangeResult{Count: -1}, fmt.Errorf("range at %d (compacted %d): %w", rev, c, ErrCompacted)
	}
	end = normEnd(end)
	if ro.Count {
		_, total := s.idx.revisions(key, end, rev, math.MaxInt)
		return RangeResult{Count: total, Rev: curRev}, nil
	}
	if ro.MetaOnly {
		kvs, total := s.idx.metas(key, end, rev, int(ro.Limit))
		return RangeResult{KVs: kvs, Count: total, Rev: curRev}, nil
	}
	revs, total := s.idx.revisions(key, end, rev, int(ro.Limit))
	if len(revs) == 0 {
		return RangeResult{Count: total, Rev: curRev}, nil
	}
	kvs := make([]mvccpb.KeyValue, len(revs))
	var kb [revBytesLen]byte
	for i, r := range revs {
		v, ok := get(appendRev(kb[:0], r))
		if !ok {
			return RangeResult{}, fmt.Errorf("range: revision %v of the index is not in the backend: %w", r, ErrCorrupt)
		}
		if err := kvs[i].Unmarshal(v); err != nil {
			return RangeResult{}, fmt.Errorf("range: revision %v: %w: %v", r, ErrCorrupt, err)
		}
	}
	return RangeResult{KVs: kvs, Count: total, Rev: curRev}, nil
}

// ReadTxn is a consistent read-only view of the store at one revision. Its
// methods may be used from several goroutines; End it exactly once.
type ReadTxn struct {
	s        *Store
	v        backend.ReadView
	rev      int64
	firstRev int64
}

// Read opens a read transaction at the current revision. Any goroutine.
func (s *Store) Read() *ReadTxn {
	s.mu.RLock()
	rev := s.currentRev.Load()
	// The view is taken after loading rev: every write up to rev was
	// published to the backend before currentRev moved.
	return &ReadTxn{s: s, v: s.b.Read(), rev: rev, firstRev: s.compactRev.Load()}
}

// Rev is the revision the transaction reads at.
func (r *ReadTxn) Rev() int64 { return r.rev }

// FirstRev is the compaction revision when the transaction began.
func (r *ReadTxn) FirstRev() int64 { return r.firstRev }

// Range returns the keys in [key, end) (end nil: key only; "\x00": no upper
// bound) at ro.Rev, with etcd's errors: %w ErrFutureRev, ErrCompacted. The
// returned KeyValues are fresh and owned by the caller.
func (r *ReadTxn) Range(key, end []byte, ro RangeOptions) (RangeResult, error) {
	return r.s.rangeKeys(key, end, r.rev, ro, r.v.Getter(schema.Key))
}

// End releases the transaction.
func (r *ReadTxn) End() {
	r.v.End()
	r.s.mu.RUnlock()
}
