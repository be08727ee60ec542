// Package backend is cairn's only user of bbolt: it owns the `member/snap/db`
// file, batches writes into one long-lived bbolt write transaction committed
// every BatchInterval or BatchLimit writes, and serves concurrent readers that
// see each write transaction as soon as it ends, before the bbolt commit.
//
// # Threading
//
//   - Writers: [Backend.Lock] returns the single [WriteTx]; it blocks while
//     another goroutine holds it. Only the holder may use the WriteTx, and it
//     must call [WriteTx.Unlock]. cairn's apply goroutine is the main writer;
//     mvcc's physical compaction takes turns with it.
//   - Readers: [Backend.Read] may be called from any number of goroutines.
//     A [ReadView] is a consistent snapshot: every write transaction that
//     unlocked before Read returned, and none that unlocked later. A view must
//     be ended with [ReadView.End]; a view may be shared by goroutines.
//   - A goroutine must not hold a ReadView while calling Lock, ForceCommit,
//     Defrag or Close: a commit that grows the mmap waits for open views.
//
// # How readers see uncommitted writes
//
// Each commit starts an epoch: a bbolt read transaction opened right after the
// commit plus an overlay of the writes made since. WriteTx.Unlock publishes its
// writes into the overlay under a new sequence number; a view remembers the
// epoch and the sequence it saw and ignores later overlay versions. The epoch
// is reference counted so its read transaction is rolled back when the last
// view using it ends (so a commit that must remap is never blocked forever).
//
// Readers do not wait for commits: while bbolt writes and fsyncs a commit,
// new views keep opening on the current epoch, which holds every write made
// so far (writers wait for the commit), and the next epoch replaces it when
// the commit is done. The exception is a commit that might grow the memory
// map (a database near MmapSize; see commitCannotRemap): bbolt's remap waits
// for every open read transaction, so such a commit blocks new views and
// lets the old epoch's read transaction go first, as etcd's backend does for
// every commit.
package backend

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/failpoint"
)

// Sentinel errors of the backend. Each is wrapped with context by the
// function that returns it.
var (
	// ErrClosed is returned by operations on a closed backend.
	ErrClosed = errors.New("backend: closed")
	// ErrBucketNotFound is returned by WriteTx.Put/Delete on a bucket that
	// was never created.
	ErrBucketNotFound = errors.New("backend: bucket not found")
	// ErrCommitFailed is returned (wrapping the bbolt error) once a commit
	// has failed; the backend then refuses writes: the on-disk state is
	// behind what readers saw, so the process must stop.
	ErrCommitFailed = errors.New("backend: commit failed")
)

// Freelist types accepted by Config.FreelistType.
const (
	FreelistMap   = "map"
	FreelistArray = "array"
)

// Config configures a Backend. Build it with DefaultConfig and check it with
// Validate; Open does not fill in defaults.
type Config struct {
	// Path of the bbolt file, e.g. <data-dir>/member/snap/db. Created with
	// mode 0600 when missing. Required.
	Path string
	// BatchInterval is the longest time a write stays uncommitted (bbolt
	// commit + fsync). Default 100ms; must be > 0. Shorter means more fsyncs.
	BatchInterval time.Duration
	// BatchLimit commits as soon as this many puts/deletes are pending.
	// Default 10000; must be > 0.
	BatchLimit int
	// FreelistType is bbolt's freelist implementation: "map" (default,
	// etcd's default) or "array".
	FreelistType string
	// MmapSize is bbolt's initial mmap size in bytes; a larger value avoids
	// remaps (which wait for open readers). Default 10 GiB (etcd's default on
	// 64-bit Linux); 0 lets bbolt grow it on demand.
	MmapSize int64
	// Logger receives operational logs. Default zap.NewNop().
	Logger *zap.Logger
	// OnCommit, when set, is called after every successful commit with its
	// duration (for etcd_disk_backend_commit_duration_seconds). It runs with
	// the write lock held: it must be quick and must not call the backend.
	OnCommit func(time.Duration)
}

// DefaultConfig returns the default configuration for the file at path.
func DefaultConfig(path string) Config {
	return Config{
		Path:          path,
		BatchInterval: 100 * time.Millisecond,
		BatchLimit:    10000,
		FreelistType:  FreelistMap,
		MmapSize:      10 << 30,
		Logger:        zap.NewNop(),
	}
}

// Validate reports the first invalid field. It never changes c.
func (c Config) Validate() error {
	switch {
	case c.Path == "":
		return errors.New("backend config: Path is empty")
	case c.BatchInterval <= 0:
		return fmt.Errorf("backend config: BatchInterval %v must be > 0", c.BatchInterval)
	case c.BatchLimit <= 0:
		return fmt.Errorf("backend config: BatchLimit %d must be > 0", c.BatchLimit)
	case c.FreelistType != FreelistMap && c.FreelistType != FreelistArray:
		return fmt.Errorf("backend config: FreelistType %q must be %q or %q", c.FreelistType, FreelistMap, FreelistArray)
	case c.MmapSize < 0:
		return fmt.Errorf("backend config: MmapSize %d must be >= 0", c.MmapSize)
	}
	return nil
}

// Backend is a bbolt database with batched commits and buffered concurrent
// reads. See the package documentation for the threading rules.
type Backend struct {
	cfg Config
	lg  *zap.Logger

	// wmu is the write lock: it protects db (against Defrag), wtx, wt, dirty,
	// pending, hooks and err. Held from Lock to Unlock, and by commits.
	wmu sync.Mutex
	db  *bolt.DB
	// wtx is the open bbolt write transaction; nil only after a failed begin.
	wtx *bolt.Tx
	wt  WriteTx
	// pending counts puts/deletes in wtx. Invariant: 0 <= pending < BatchLimit
	// whenever wmu is free.
	pending int
	// pendingBytes is the size of the keys and values put in wtx.
	pendingBytes int64
	// dirty is true when wtx holds anything worth committing.
	dirty bool
	// err is sticky: once a commit failed every later write returns it.
	err   error
	hooks []func(*WriteTx) error
	// commitTx commits a bbolt write transaction: (*bolt.Tx).Commit, or a
	// test's wrapper around it.
	commitTx func(*bolt.Tx) error
	// rec records writes while a defrag copies; nil otherwise. Protected by
	// wmu.
	rec *defragLog
	// splitLog records every write since the last commit when the
	// ci-saved-apart seeded bug is on (test builds only; see splitCommit).
	splitLog *defragLog

	// defragMu runs defrags one at a time.
	defragMu sync.Mutex
	// retired counts replaced database files still being closed.
	retired sync.WaitGroup

	// epochMu protects cur. Readers RLock it only to take a reference;
	// commits hold the write side while they swap epochs.
	epochMu sync.RWMutex
	// cur is the epoch new views use. Invariant: cur != nil while open;
	// cur.refs >= 1 (the backend's own reference).
	cur *epoch

	size, sizeInUse atomic.Int64
	closed          atomic.Bool
	stopc, donec    chan struct{}
}

// Open opens (creating if needed) the bbolt file at cfg.Path and starts the
// periodic committer. The caller must Close the backend.
func Open(cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	b := &Backend{cfg: cfg, lg: lg, stopc: make(chan struct{}), donec: make(chan struct{}), commitTx: (*bolt.Tx).Commit}
	b.wt.b = b
	if failpoint.On(failpoint.CISavedApart) { // test-only seeded bug
		b.splitLog = &defragLog{}
		b.commitTx = b.splitCommit
	}
	db, err := bolt.Open(cfg.Path, 0o600, b.boltOptions())
	if err != nil {
		return nil, fmt.Errorf("open backend %s: %w", cfg.Path, err)
	}
	b.db = db
	if err := b.beginLocked(); err != nil {
		db.Close()
		return nil, err
	}
	go b.run()
	return b, nil
}

func (b *Backend) boltOptions() *bolt.Options {
	ft := bolt.FreelistMapType
	if b.cfg.FreelistType == FreelistArray {
		ft = bolt.FreelistArrayType
	}
	return &bolt.Options{
		Timeout:         10 * time.Second, // another process holds the file lock
		FreelistType:    ft,
		NoFreelistSync:  true,
		InitialMmapSize: int(b.cfg.MmapSize),
	}
}

// beginLocked opens a new epoch and write transaction. Caller holds wmu and
// not epochMu.
func (b *Backend) beginLocked() error {
	b.epochMu.Lock()
	defer b.epochMu.Unlock()
	return b.beginEpochLocked()
}

func (b *Backend) updateSize(rtx *bolt.Tx) {
	size := rtx.Size()
	b.size.Store(size)
	free := int64(b.db.Stats().FreePageN) * int64(b.db.Info().PageSize)
	b.sizeInUse.Store(size - free)
}

func (b *Backend) run() {
	defer close(b.donec)
	t := time.NewTicker(b.cfg.BatchInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stopc:
			return
		case <-t.C:
		}
		b.wmu.Lock()
		if b.dirty && b.err == nil {
			if err := b.commitLocked(); err != nil {
				b.lg.Error("backend periodic commit failed", zap.Error(err))
			}
		}
		b.wmu.Unlock()
	}
}

// commitLocked runs the pre-commit hooks, commits wtx, opens a new epoch and
// a new write transaction. Caller holds wmu.
func (b *Backend) commitLocked() error {
	if b.err != nil {
		return b.err
	}
	for _, h := range b.hooks {
		if err := h(&b.wt); err != nil {
			return b.fail(fmt.Errorf("pre-commit hook: %w", err))
		}
	}
	// Everything in wtx, hook writes included, reaches readers through the
	// next epoch's read tx: nothing is left to publish.
	clear(b.wt.ops)
	b.wt.ops = b.wt.ops[:0]
	failpoint.Crash(failpoint.BackendBeforeCommit) // test builds only
	start := time.Now()
	var err, rerr error
	var rtx *bolt.Tx
	if b.commitCannotRemap() {
		// Views keep opening on the current epoch while bbolt writes and
		// fsyncs: it holds every write made so far (no write can start while
		// wmu is held), so readers never wait for the disk. The epoch is
		// swapped only once the commit is done.
		err = b.commitTx(b.wtx)
		b.wtx = nil
		rtx, rerr = b.db.Begin(false)
		b.epochMu.Lock()
		old := b.cur
		b.cur = newEpoch(rtx)
		b.epochMu.Unlock()
		old.release()
	} else {
		// The commit may have to grow the mmap, which waits for every open
		// read transaction: block new views and drop the backend's reference
		// to the old epoch, so its read tx is rolled back as soon as the
		// last view ends.
		b.epochMu.Lock()
		old := b.cur
		b.cur = nil
		old.release()
		err = b.commitTx(b.wtx)
		b.wtx = nil
		rtx, rerr = b.db.Begin(false)
		b.cur = newEpoch(rtx)
		b.epochMu.Unlock()
	}
	if err != nil {
		return b.fail(err)
	}
	failpoint.Crash(failpoint.BackendAfterCommit) // test builds only
	if rerr != nil {
		return b.fail(fmt.Errorf("begin read tx: %w", rerr))
	}
	d := time.Since(start)
	b.pending, b.pendingBytes, b.dirty = 0, 0, false
	b.updateSize(rtx)
	if b.cfg.OnCommit != nil {
		b.cfg.OnCommit(d)
	}
	wtx, err := b.db.Begin(true)
	if err != nil {
		return b.fail(fmt.Errorf("begin write tx: %w", err))
	}
	b.wtx = wtx
	return nil
}

// commitCannotRemap reports whether committing wtx surely fits in the
// database's memory map, so the commit cannot remap (bbolt remaps only when
// the file's high-water mark passes the mapped size, which is at least
// MmapSize). The bound is deliberately loose: a commit rewrites each dirty
// node once, so the high-water mark grows by at most the whole tree (the
// current size) plus what was written, plus a few pages per write for the
// nodes on its path. Caller holds wmu.
func (b *Backend) commitCannotRemap() bool {
	if b.cfg.MmapSize <= 0 || b.wtx == nil {
		return false
	}
	page := int64(b.db.Info().PageSize)
	bound := 2*b.wtx.Size() + b.pendingBytes + int64(b.pending+64)*8*page
	return bound < b.cfg.MmapSize
}

func (b *Backend) fail(err error) error {
	b.err = fmt.Errorf("%w: %w", ErrCommitFailed, err)
	if b.wtx != nil {
		_ = b.wtx.Rollback()
		b.wtx = nil
	}
	b.lg.Error("backend commit failed; refusing further writes", zap.Error(err))
	return b.err
}

// AddPreCommitHook registers f to run inside the write transaction just
// before each commit, with the write lock held (f must use only the given
// WriteTx). An error aborts the commit and makes the backend fail. Callable
// from any goroutine; typically called once at start-up.
func (b *Backend) AddPreCommitHook(f func(*WriteTx) error) {
	b.wmu.Lock()
	b.hooks = append(b.hooks, f)
	b.wmu.Unlock()
}

// ForceCommit commits pending writes now and returns once they are durable.
// Any goroutine not holding the WriteTx or a ReadView may call it.
func (b *Backend) ForceCommit() error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.closed.Load() {
		return ErrClosed
	}
	if b.err != nil {
		return b.err
	}
	if !b.dirty {
		return nil
	}
	return b.commitLocked()
}

// WriteIdle reports whether nobody holds the write transaction at this
// instant (no commit, defrag or writer running). A hint only: a commit may
// start right after; callers use it to avoid waiting where a wait would be
// costly, never for correctness.
func (b *Backend) WriteIdle() bool {
	if !b.wmu.TryLock() {
		return false
	}
	b.wmu.Unlock()
	return true
}

// Err returns the sticky commit error, or nil. Any goroutine.
func (b *Backend) Err() error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	return b.err
}

// Size is the size of the database in bytes as of the last commit (bbolt's
// tx size: high-water page × page size). Any goroutine; lock free.
func (b *Backend) Size() int64 { return b.size.Load() }

// SizeInUse is Size minus the pages on bbolt's freelist, as of the last
// commit. Any goroutine; lock free.
func (b *Backend) SizeInUse() int64 { return b.sizeInUse.Load() }

// Path returns the database file path.
func (b *Backend) Path() string { return b.cfg.Path }

// Close commits pending writes, stops the committer and closes the file. It
// waits for open views and snapshots to end. Call once, from any goroutine
// that holds neither the WriteTx nor a ReadView.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return ErrClosed
	}
	close(b.stopc)
	<-b.donec
	b.wmu.Lock()
	defer b.wmu.Unlock()
	var err error
	if b.err == nil && b.dirty {
		err = b.commitLocked()
	}
	if b.wtx != nil {
		_ = b.wtx.Rollback()
		b.wtx = nil
	}
	b.epochMu.Lock()
	if b.cur != nil {
		b.cur.release()
		b.cur = nil
	}
	b.epochMu.Unlock()
	if cerr := b.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close backend: %w", cerr)
	}
	b.retired.Wait()
	return err
}

// beginEpochLocked is beginLocked for callers already holding epochMu.
func (b *Backend) beginEpochLocked() error {
	rtx, err := b.db.Begin(false)
	if err != nil {
		b.cur = newEpoch(nil)
		return fmt.Errorf("begin read tx: %w", err)
	}
	b.updateSize(rtx)
	b.cur = newEpoch(rtx)
	wtx, err := b.db.Begin(true)
	if err != nil {
		return fmt.Errorf("begin write tx: %w", err)
	}
	b.wtx = wtx
	return nil
}
