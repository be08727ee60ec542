package wal

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// DefaultSegmentSizeBytes is etcd's segment size: every segment is
// preallocated to it, and a segment is cut once a Save ends past it.
const DefaultSegmentSizeBytes int64 = 64 * 1000 * 1000

// warnSyncDuration is how long an fdatasync may take before a warning is logged.
const warnSyncDuration = time.Second

// Options tune a WAL. The zero value behaves as etcd 3.6 does.
type Options struct {
	// NoFsync skips every fdatasync and directory fsync (etcd's
	// --unsafe-no-fsync). Unsafe: a power loss can lose acknowledged writes.
	NoFsync bool
	// OnFsync, if set, receives the duration of every WAL fdatasync and WAL
	// directory fsync (the server feeds etcd_disk_wal_fsync_duration_seconds).
	// It runs on the goroutine calling the WAL, with the WAL's lock held: it
	// must be quick and must not call back into the WAL.
	OnFsync func(time.Duration)
	// SegmentSizeBytes is the preallocated size of a segment and the offset
	// past which a Save cuts to a new one, in bytes. 0 means
	// DefaultSegmentSizeBytes (64,000,000). Only tests change it; a data dir
	// shared with etcd must keep the default.
	SegmentSizeBytes int64
}

func (o Options) segmentSize() int64 {
	if o.SegmentSizeBytes > 0 {
		return o.SegmentSizeBytes
	}
	return DefaultSegmentSizeBytes
}

// segment is one segment file the WAL holds.
type segment struct {
	segmentName
	f *fileutil.LockedFile // locked file in append mode; nil in read-only mode
}

// WAL is an etcd-format write-ahead log in one directory. See the package
// documentation for the file format and the Save contract.
type WAL struct {
	lg      *zap.Logger
	dir     string
	opts    Options
	segSize int64

	// mu protects every field below. All methods may be called from any
	// goroutine; they are serialised on mu.
	mu sync.Mutex

	dirFile  *os.File // the WAL directory, fsynced after renames; nil in read-only mode
	metadata []byte   // recorded at the head of every segment
	// state is the last non-empty HardState written.
	state raftpb.HardState

	start     Snapshot // snapshot ReadAll starts after
	dec       *decoder // non-nil until ReadAll
	closeRead func()   // closes read-only files after ReadAll
	writable  bool     // opened for appending (Create or Open)
	ready     bool     // appending allowed: writable, and ReadAll done (or created)

	// segs are the segments held, in sequence order; the last is the tail
	// being appended to.
	// Invariant: segs[i+1].seq == segs[i].seq+1 and segs[i].index <= segs[i+1].index.
	segs []segment
	// off is where the next record goes in the tail.
	// Invariant (when ready): 0 < off <= the tail's file size.
	off  int64
	crc  uint32 // CRC chain value after the last record written
	enti uint64 // index of the last entry (or snapshot) written; names the next segment

	next    *fileutil.LockedFile // the preallocated next segment (0.tmp); nil if not prepared
	buf     []byte               // encode buffer, reused by every append
	scratch []byte               // marshal buffer for one entry, reused
	stBuf   raftpb.HardState     // the HardState being marshalled by Save
	err     error                // first write failure; once set, appends are refused
	// lastSync is when the tail was last fsynced by Save (only the
	// AckBeforeFsync seeded bug reads it).
	lastSync time.Time
	closed   bool
}

func newWAL(lg *zap.Logger, dir string, opts Options) *WAL {
	if lg == nil {
		lg = zap.NewNop()
	}
	return &WAL{lg: lg, dir: dir, opts: opts, segSize: opts.segmentSize()}
}

// Create makes a new WAL in dir (which must not hold one), with the first
// segment 0000000000000000-0000000000000000.wal holding a crc record, the
// metadata and the zero snapshot, all synced. The directory appears
// atomically: it is built as dir+".tmp" and renamed. The returned WAL is ready
// for appending.
func Create(lg *zap.Logger, dir string, metadata []byte, opts Options) (*WAL, error) {
	if Exist(dir) {
		return nil, fmt.Errorf("wal: create %s: %w", dir, ErrExist)
	}
	w := newWAL(lg, dir, opts)
	tmpDir := filepath.Clean(dir) + ".tmp"
	if err := os.RemoveAll(tmpDir); err != nil {
		return nil, fmt.Errorf("wal: create: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	if err := fileutil.CreateDirAll(w.lg, tmpDir); err != nil {
		return nil, fmt.Errorf("wal: create: %w", err)
	}
	name := walName(0, 0)
	f, err := fileutil.LockFile(filepath.Join(tmpDir, name), os.O_WRONLY|os.O_CREATE, fileutil.PrivateFileMode)
	if err != nil {
		return nil, fmt.Errorf("wal: create: %w", err)
	}
	w.segs = []segment{{segmentName: segmentName{name: name}, f: f}}
	ok := false
	defer func() {
		if !ok {
			w.closeFiles()
		}
	}()
	if err := fileutil.Preallocate(f.File, w.segSize, true); err != nil {
		return nil, fmt.Errorf("wal: create: preallocate: %w", err)
	}
	w.metadata = metadata
	w.writable, w.ready = true, true
	var crc uint32
	w.buf = w.buf[:0]
	w.frame(&crc, CrcType, nil)
	w.frame(&crc, MetadataType, metadata)
	snap, err := (&Snapshot{}).marshal()
	if err != nil {
		return nil, err
	}
	w.frame(&crc, SnapshotType, snap)
	if _, err := disk.WriteAt(f.File, w.buf, 0); err != nil {
		return nil, fmt.Errorf("wal: create: write: %w", err)
	}
	w.off, w.crc = int64(len(w.buf)), crc
	if err := w.fdatasync(f.File); err != nil {
		return nil, fmt.Errorf("wal: create: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("wal: create: %w", err)
	}
	if err := os.Rename(tmpDir, dir); err != nil {
		return nil, fmt.Errorf("wal: create: %w", err)
	}
	if err := w.fsyncDirPath(filepath.Dir(filepath.Clean(dir))); err != nil {
		return nil, fmt.Errorf("wal: create: %w", err)
	}
	if w.dirFile, err = fileutil.OpenDir(dir); err != nil {
		return nil, fmt.Errorf("wal: create: %w", err)
	}
	if err := w.prepareNext(); err != nil {
		w.lg.Warn("failed to prepare the next WAL segment", zap.Error(err))
	}
	w.checkInvariants()
	ok = true
	return w, nil
}

// Open opens the WAL in dir for appending, at the segment holding snap. The
// segments from there on are locked (flock, as etcd does): opening a WAL in
// use by another process fails with fileutil.ErrLocked. Call ReadAll before
// appending.
func Open(lg *zap.Logger, dir string, snap Snapshot, opts Options) (*WAL, error) {
	w := newWAL(lg, dir, opts)
	names, err := selectWALFiles(w.lg, dir, snap.Index)
	if err != nil {
		return nil, err
	}
	srcs := make([]source, 0, len(names))
	for _, n := range names {
		p := filepath.Join(dir, n.name)
		l, err := fileutil.TryLockFile(p, os.O_RDWR, fileutil.PrivateFileMode)
		if err != nil {
			w.closeFiles()
			return nil, fmt.Errorf("wal: lock %s: %w", p, err)
		}
		w.segs = append(w.segs, segment{segmentName: n, f: l})
		st, err := l.Stat()
		if err != nil {
			w.closeFiles()
			return nil, fmt.Errorf("wal: stat %s: %w", p, err)
		}
		srcs = append(srcs, source{path: p, r: l.File, size: st.Size()})
	}
	if w.dirFile, err = fileutil.OpenDir(dir); err != nil {
		w.closeFiles()
		return nil, fmt.Errorf("wal: open dir: %w", err)
	}
	w.start, w.dec, w.writable = snap, newDecoder(srcs...), true
	return w, nil
}

// OpenForRead opens the WAL in dir for reading only, at the segment holding
// snap, without locking anything: it works while another process appends.
// ReadAll tolerates a torn tail; appends return ErrNotWritable.
func OpenForRead(lg *zap.Logger, dir string, snap Snapshot) (*WAL, error) {
	w := newWAL(lg, dir, Options{})
	names, err := selectWALFiles(w.lg, dir, snap.Index)
	if err != nil {
		return nil, err
	}
	srcs, closeAll, err := openReadOnly(dir, names)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		w.segs = append(w.segs, segment{segmentName: n})
	}
	w.start, w.dec, w.closeRead = snap, newDecoder(srcs...), closeAll
	return w, nil
}

// ReadAll reads every record after the snapshot given to Open and returns
// the metadata, the last HardState and the entries after the snapshot index.
// A later entry with an index already read replaces it and every entry after
// it (a leader overwriting an uncommitted suffix), as etcd does; entries above
// state.Commit may still be overwritten and must not be applied.
//
// In append mode every record must decode up to the end: a torn tail returns
// an error wrapping ErrTornWrite (and io.ErrUnexpectedEOF), which Repair
// fixes; a corrupt segment returns a *CorruptionError naming the file. On
// success anything after the last record of the tail is zeroed and the WAL is
// ready for appending. In read-only mode a torn tail ends the read silently.
//
// If no snapshot record matches the requested one, the data is returned with
// an error wrapping ErrSnapshotNotFound (and the WAL is still ready).
func (w *WAL) ReadAll() (metadata []byte, state raftpb.HardState, ents []raftpb.Entry, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, state, nil, ErrClosed
	}
	d := w.dec
	if d == nil {
		return nil, state, nil, ErrDecoderNotFound
	}
	var (
		rec   Record
		match bool
		none  raftpb.HardState
	)
	for err = d.next(&rec); err == nil; err = d.next(&rec) {
		switch rec.Type {
		case EntryType:
			var e raftpb.Entry
			if uerr := e.Unmarshal(rec.Data); uerr != nil {
				return nil, none, nil, d.badRecord(fmt.Errorf("%w: entry: %v", ErrBadRecord, uerr))
			}
			if e.Index > w.start.Index {
				offset := e.Index - w.start.Index - 1
				if offset > uint64(len(ents)) {
					// Return the contiguous entries read so far, as etcd does.
					return nil, none, ents, fmt.Errorf("%w, snapshot[Index: %d, Term: %d], current entry[Index: %d, Term: %d], len(ents): %d",
						ErrSliceOutOfRange, w.start.Index, w.start.Term, e.Index, e.Term, len(ents))
				}
				ents = append(ents[:offset], e)
			}
			w.enti = e.Index
		case StateType:
			st, serr := decodeHardState(&rec, d)
			if serr != nil {
				return nil, none, nil, serr
			}
			state = st
		case MetadataType:
			if metadata != nil && !bytes.Equal(metadata, rec.Data) {
				return nil, none, nil, d.badRecord(ErrMetadataConflict)
			}
			if metadata == nil {
				metadata = bytes.Clone(rec.Data)
			}
		case CrcType:
			// The decoder checks and follows the chain.
		case SnapshotType:
			s, serr := unmarshalSnapshot(rec.Data)
			if serr != nil {
				return nil, none, nil, d.badRecord(serr)
			}
			if s.Index == w.start.Index {
				if s.Term != w.start.Term {
					return nil, none, nil, fmt.Errorf("wal: snapshot at index %d has term %d, want %d: %w", s.Index, s.Term, w.start.Term, ErrSnapshotMismatch)
				}
				match = true
			}
		default:
			return nil, none, nil, d.badRecord(fmt.Errorf("%w: unexpected record type %d", ErrBadRecord, rec.Type))
		}
	}
	if w.writable {
		if !errors.Is(err, io.EOF) {
			return nil, none, nil, err
		}
		// Zero whatever follows the last valid record (the remains of a torn
		// write the decoder stopped at a zero length field before), so that
		// new records never sit before stale ones.
		tail := w.tail()
		if zerr := zeroToEnd(tail.f.File, d.off, w.segSize); zerr != nil {
			return nil, none, nil, fmt.Errorf("wal: zero tail of %s: %w", tail.name, zerr)
		}
		w.off, w.crc = d.off, d.crc
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, none, nil, err
	}
	err = nil
	if !match {
		err = fmt.Errorf("wal: snapshot index %d term %d: %w", w.start.Index, w.start.Term, ErrSnapshotNotFound)
	}
	if w.closeRead != nil {
		w.closeRead()
		w.closeRead = nil
	}
	w.start, w.dec, w.metadata = Snapshot{}, nil, metadata
	// Unlike etcd, remember the state read: it is durable, so MustSync
	// compares against it and a cut repeats it in the new segment.
	w.state = state
	if w.writable {
		w.ready = true
		if perr := w.prepareNext(); perr != nil {
			w.lg.Warn("failed to prepare the next WAL segment", zap.Error(perr))
		}
		w.checkInvariants()
	}
	return metadata, state, ents, err
}

// zeroToEnd truncates f to off and preallocates it back to at least size.
func zeroToEnd(f *os.File, off, size int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := f.Truncate(off); err != nil {
		return err
	}
	return fileutil.Preallocate(f, max(st.Size(), size), true)
}

func (d *decoder) badRecord(err error) error {
	return &CorruptionError{Path: d.path(), Offset: d.recOff, Err: err}
}

func (w *WAL) tail() *segment {
	if len(w.segs) == 0 {
		return nil
	}
	return &w.segs[len(w.segs)-1]
}

// ReleaseLockTo releases the locks of segments that hold only entries below
// index, keeping the newest of them: with segments 1..6 locked,
// ReleaseLockTo(index in segment 4) releases 1 and 2 and keeps 3. A released
// segment may then be removed by a purge.
func (w *WAL) ReleaseLockTo(index uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.segs) == 0 {
		return nil
	}
	smaller := len(w.segs) - 1
	for i, s := range w.segs {
		if s.index >= index {
			smaller = i - 1
			break
		}
	}
	if smaller <= 0 {
		return nil
	}
	for _, s := range w.segs[:smaller] {
		if s.f != nil {
			if err := s.f.Close(); err != nil {
				w.lg.Warn("failed to unlock WAL segment", zap.String("path", s.name), zap.Error(err))
			}
		}
	}
	w.segs = append(w.segs[:0], w.segs[smaller:]...)
	return nil
}

// Close syncs the tail (if appending and healthy), removes the prepared next
// segment, and releases every file and lock. Later calls return nil.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	var err error
	if w.ready && w.err == nil {
		err = w.fdatasync(w.tail().f.File)
	}
	w.closed = true
	w.closeFiles()
	return err
}

// closeFiles releases every file the WAL holds.
func (w *WAL) closeFiles() {
	if w.next != nil {
		os.Remove(w.next.Name())
		w.next.Close()
		w.next = nil
	}
	for _, s := range w.segs {
		if s.f != nil {
			if err := s.f.Close(); err != nil {
				w.lg.Error("failed to close WAL", zap.Error(err))
			}
		}
	}
	w.segs = nil
	if w.closeRead != nil {
		w.closeRead()
		w.closeRead = nil
	}
	if w.dirFile != nil {
		w.dirFile.Close()
		w.dirFile = nil
	}
}

// frame appends one record to w.buf, advancing the CRC chain in *crc.
func (w *WAL) frame(crc *uint32, typ int64, data []byte) {
	if typ != CrcType {
		*crc = crc32.Update(*crc, crcTable, data)
	}
	w.buf = appendFrame(w.buf, typ, *crc, data)
}

type marshaler interface {
	Size() int
	MarshalTo([]byte) (int, error)
}

// frameMsg marshals m into the reusable scratch buffer and frames it.
func (w *WAL) frameMsg(crc *uint32, typ int64, m marshaler) error {
	n := m.Size()
	if cap(w.scratch) < n {
		w.scratch = make([]byte, n, max(n, 2*cap(w.scratch)))
	}
	k, err := m.MarshalTo(w.scratch[:n])
	if err != nil {
		return fmt.Errorf("wal: marshal record type %d: %w", typ, err)
	}
	w.frame(crc, typ, w.scratch[:k])
	return nil
}

func (w *WAL) fdatasync(f *os.File) error {
	if w.opts.NoFsync {
		return nil
	}
	start := time.Now()
	err := disk.Fdatasync(f)
	took := time.Since(start)
	if took > warnSyncDuration {
		w.lg.Warn("slow fdatasync", zap.Duration("took", took), zap.Duration("expected-duration", warnSyncDuration))
	}
	if w.opts.OnFsync != nil {
		w.opts.OnFsync(took)
	}
	if err != nil {
		return fmt.Errorf("wal: fdatasync %s: %w", f.Name(), err)
	}
	return nil
}

func (w *WAL) fsyncDir(d *os.File) error {
	if w.opts.NoFsync {
		return nil
	}
	start := time.Now()
	err := fileutil.Fsync(d)
	if w.opts.OnFsync != nil {
		w.opts.OnFsync(time.Since(start))
	}
	if err != nil {
		return fmt.Errorf("wal: fsync dir %s: %w", d.Name(), err)
	}
	return nil
}

func (w *WAL) fsyncDirPath(dir string) error {
	d, err := fileutil.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("wal: open dir: %w", err)
	}
	defer d.Close()
	return w.fsyncDir(d)
}

// SegmentOf returns the path of the segment that holds the entry at index:
// the last segment opened whose name's index (that of its first entry) is
// at most index, or the first segment when none is. "" when no segment was
// opened.
func (w *WAL) SegmentOf(index uint64) string {
	if len(w.segs) == 0 {
		return ""
	}
	name := w.segs[0].name
	for _, s := range w.segs[1:] {
		if s.index > index {
			break
		}
		name = s.name
	}
	return filepath.Join(w.dir, name)
}
