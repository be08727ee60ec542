package backend

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/failpoint"
)

// Defrag rewrites the database into a new file without free pages and
// replaces the old one, without stopping writers or readers for the copy.
//
// etcd holds its write lock for the whole copy, so every write waits for the
// defrag of a large backend (seconds). cairn copies from a read transaction
// while writes go on; every write made meanwhile is also recorded in a log
// (defragLog), replayed onto the copy in rounds until little is left, and
// the write lock is taken only for the last few writes and the swap:
//
//  1. (write lock) commit pending writes, begin a read transaction on the
//     committed state, start recording.
//  2. (no lock) copy every bucket from that read transaction into a new file;
//     replay the recorded writes in rounds; fsync the new file.
//  3. (write lock) commit pending writes (so pre-commit hooks, e.g. the
//     consistent index, are recorded too), replay what is left and commit it
//     durably, rename the new file over the old one, fsync the directory, and
//     switch the backend to the new file. Views and snapshots still open on
//     the old file go on reading it; it is closed once the last one ends.
//
// Invariant: while rec != nil, every write made through the WriteTx since
// the copy's read transaction began is in rec, in order.
//
// Any goroutine holding neither the WriteTx nor a ReadView. Concurrent calls
// run one after the other.
func (b *Backend) Defrag() error {
	b.defragMu.Lock()
	defer b.defragMu.Unlock()
	start := time.Now()

	// 1. Start recording on a committed state.
	b.wmu.Lock()
	if b.closed.Load() {
		b.wmu.Unlock()
		return ErrClosed
	}
	if b.dirty {
		if err := b.commitLocked(); err != nil {
			b.wmu.Unlock()
			return err
		}
	} else if b.err != nil {
		b.wmu.Unlock()
		return b.err
	}
	src, err := b.db.Begin(false)
	if err != nil {
		b.wmu.Unlock()
		return fmt.Errorf("defrag: begin read tx: %w", err)
	}
	sizeBefore := b.Size()
	rec := &defragLog{}
	b.rec = rec
	b.wmu.Unlock()

	d := &defragCopy{b: b, src: src, rec: rec}
	if err := d.copyAndCatchUp(); err != nil {
		b.wmu.Lock()
		defer b.wmu.Unlock()
		return d.abortLocked(err)
	}

	// 3. Finish under the write lock and swap.
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if err := d.finishLocked(); err != nil {
		return d.abortLocked(err)
	}
	b.lg.Info("finished defragmenting directory",
		zap.String("path", b.cfg.Path),
		zap.Int64("current-db-size-bytes-diff", b.Size()-sizeBefore),
		zap.Int64("current-db-size-bytes", b.Size()),
		zap.Int64("current-db-size-in-use-bytes", b.SizeInUse()),
		zap.Int("writes-replayed", d.replayed),
		zap.Duration("write-lock-held", d.locked),
		zap.Duration("took", time.Since(start)))
	return nil
}

// defragTxLimit is the number of bytes copied per transaction while
// defragmenting. It bounds the memory of one bbolt transaction and, since
// each one is fsynced, the dirty data the copy piles up in the page cache
// and so how long one flush keeps the disk from the WAL's own fsyncs (16
// MiB chunks delayed puts by up to 300 ms on this machine's disk).
const defragTxLimit = 2 << 20

// defragCatchUpRounds bounds the replay rounds outside the lock; the last
// round's leftover is replayed under it.
const defragCatchUpRounds = 8

// defragSmallLog is a leftover small enough to replay under the lock.
const defragSmallLog = 1024

// defragPause, when set (tests), runs between the copy and the catch-up
// rounds, with no lock held.
var defragPause func()

// defragLog records writes made while a defrag copies.
type defragLog struct {
	ops []recOp
}

type recOpKind uint8

const (
	recPut recOpKind = iota
	recDelete
	recCreateBucket
	recDeleteBucket
)

type recOp struct {
	kind             recOpKind
	bucket, key, val []byte
}

// record appends a write to the defrag log, if one runs. Caller holds wmu.
func (b *Backend) record(kind recOpKind, bucket, key, val []byte) {
	if b.rec != nil {
		b.rec.ops = append(b.rec.ops, recOp{kind: kind, bucket: bucket, key: key, val: val})
	}
	if b.splitLog != nil {
		b.splitLog.ops = append(b.splitLog.ops, recOp{kind: kind, bucket: bucket, key: key, val: val})
	}
}

// takeLocked removes and returns the recorded writes. Caller holds wmu.
func (l *defragLog) takeLocked() []recOp {
	ops := l.ops
	l.ops = nil
	return ops
}

// defragCopy is one defrag's state outside the backend.
type defragCopy struct {
	b        *Backend
	src      *bolt.Tx // nil once the copy is done
	rec      *defragLog
	tmpPath  string
	dst      *bolt.DB
	replayed int
	locked   time.Duration
}

// copyAndCatchUp is step 2.
func (d *defragCopy) copyAndCatchUp() error {
	b := d.b
	tmp, err := os.CreateTemp(filepath.Dir(b.cfg.Path), "db.tmp.*")
	if err != nil {
		return fmt.Errorf("defrag: %w", err)
	}
	d.tmpPath = tmp.Name()
	tmp.Close()
	opts := b.boltOptions()
	opts.NoSync = true // synced once the copy is complete
	if d.dst, err = bolt.Open(d.tmpPath, 0o600, opts); err != nil {
		return fmt.Errorf("defrag open temp: %w", err)
	}
	if err := copyTx(d.dst, d.src, defragTxLimit, d.flush); err != nil {
		return fmt.Errorf("defrag copy: %w", err)
	}
	_ = d.src.Rollback()
	d.src = nil
	if defragPause != nil {
		defragPause()
	}
	for range defragCatchUpRounds {
		b.wmu.Lock()
		ops := d.rec.takeLocked()
		b.wmu.Unlock()
		if err := d.replay(ops); err != nil {
			return err
		}
		if len(ops) <= defragSmallLog {
			break
		}
	}
	if err := d.dst.Sync(); err != nil {
		return fmt.Errorf("defrag sync: %w", err)
	}
	return nil
}

// flush makes a copied chunk durable, then leaves the disk to the WAL for
// as long as the flush took: the copy then uses at most about half the
// disk's time, and the member's own fsyncs never queue behind more than one
// chunk. (The defrag takes longer; nobody waits for it.)
func (d *defragCopy) flush() error {
	start := time.Now()
	if err := d.dst.Sync(); err != nil {
		return err
	}
	t := time.NewTimer(time.Since(start))
	defer t.Stop()
	select {
	case <-t.C:
	case <-d.b.stopc:
	}
	return nil
}

// finishLocked is step 3. Caller holds wmu.
func (d *defragCopy) finishLocked() error {
	b := d.b
	start := time.Now()
	defer func() { d.locked = time.Since(start) }()
	if b.closed.Load() {
		return ErrClosed
	}
	if b.dirty {
		if err := b.commitLocked(); err != nil {
			return err
		}
	} else if b.err != nil {
		return b.err
	}
	ops := d.rec.takeLocked()
	b.rec = nil
	d.dst.NoSync = false // this commit makes the copy durable
	if err := d.replay(ops); err != nil {
		return err
	}
	if len(ops) == 0 {
		if err := d.dst.Sync(); err != nil {
			return fmt.Errorf("defrag sync: %w", err)
		}
	}
	failpoint.Crash(failpoint.DefragBeforeSwap) // test builds only
	if err := os.Rename(d.tmpPath, b.cfg.Path); err != nil {
		return fmt.Errorf("defrag rename: %w", err)
	}
	d.tmpPath = ""
	if dir, err := os.Open(filepath.Dir(b.cfg.Path)); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	// From here the new file is the database: a failure is the backend's.
	_ = b.wtx.Rollback()
	b.wtx = nil
	b.epochMu.Lock()
	b.cur.release()
	b.cur = nil
	old := b.db
	b.db, d.dst = d.dst, nil
	err := b.beginEpochLocked()
	b.epochMu.Unlock()
	b.retire(old)
	if err != nil {
		return b.fail(err)
	}
	return nil
}

// replay applies recorded writes to the copy in one transaction.
func (d *defragCopy) replay(ops []recOp) error {
	if len(ops) == 0 {
		return nil
	}
	err := d.dst.Update(func(tx *bolt.Tx) error {
		for _, op := range ops {
			if err := replayOp(tx, op); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("defrag replay: %w", err)
	}
	d.replayed += len(ops)
	return nil
}

func replayOp(tx *bolt.Tx, op recOp) error {
	switch op.kind {
	case recCreateBucket:
		_, err := tx.CreateBucketIfNotExists(op.bucket)
		return err
	case recDeleteBucket:
		if err := tx.DeleteBucket(op.bucket); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
			return err
		}
		return nil
	}
	bk := tx.Bucket(op.bucket)
	if bk == nil {
		return fmt.Errorf("bucket %q: %w", op.bucket, ErrBucketNotFound)
	}
	if op.kind == recDelete {
		return bk.Delete(op.key)
	}
	return bk.Put(op.key, op.val)
}

// abortLocked undoes a defrag that did not swap: recording stops, the copy
// is removed, the database is untouched. Caller holds wmu.
func (d *defragCopy) abortLocked(cause error) error {
	b := d.b
	if b.rec == d.rec {
		b.rec = nil
	}
	if d.src != nil {
		_ = d.src.Rollback()
	}
	if d.dst != nil {
		d.dst.Close()
	}
	if d.tmpPath != "" {
		os.Remove(d.tmpPath)
	}
	return cause
}

// retire closes a replaced database file once the views and snapshots still
// reading it have ended; Close waits for it.
func (b *Backend) retire(old *bolt.DB) {
	b.retired.Add(1)
	go func() {
		defer b.retired.Done()
		if err := old.Close(); err != nil {
			b.lg.Warn("failed to close the pre-defrag database file", zap.Error(err))
		}
	}()
}

// copyTx copies every bucket (nested ones too) with its sequence from src to
// dst, committing every txMaxSize bytes and calling flush after each of
// those commits. Keys arrive in order, so pages are filled completely.
func copyTx(dst *bolt.DB, src *bolt.Tx, txMaxSize int64, flush func() error) error {
	tx, err := dst.Begin(true)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var size int64
	var path [][]byte
	// bucket returns the destination bucket for path in the current tx.
	bucket := func() *bolt.Bucket {
		bk := tx.Bucket(path[0])
		for _, p := range path[1:] {
			bk = bk.Bucket(p)
		}
		bk.FillPercent = 1.0
		return bk
	}
	var walk func(sb *bolt.Bucket) error
	walk = func(sb *bolt.Bucket) error {
		db := bucket()
		if err := db.SetSequence(sb.Sequence()); err != nil {
			return err
		}
		c := sb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil { // a nested bucket
				if _, err := db.CreateBucket(k); err != nil {
					return err
				}
				path = append(path, k)
				if err := walk(sb.Bucket(k)); err != nil {
					return err
				}
				path = path[:len(path)-1]
				db = bucket()
				continue
			}
			if size += int64(len(k) + len(v)); size > txMaxSize {
				if err := tx.Commit(); err != nil {
					return err
				}
				if err := flush(); err != nil {
					return err
				}
				if tx, err = dst.Begin(true); err != nil {
					return err
				}
				size = int64(len(k) + len(v))
				db = bucket()
			}
			if err := db.Put(k, v); err != nil {
				return err
			}
		}
		return nil
	}
	err = src.ForEach(func(name []byte, sb *bolt.Bucket) error {
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
		path = append(path[:0], name)
		return walk(sb)
	})
	if err != nil {
		return err
	}
	return tx.Commit()
}
