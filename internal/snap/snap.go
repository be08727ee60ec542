// Package snap stores raft snapshots in etcd 3.6's file formats, in the
// member/snap directory:
//
//   - %016x-%016x.snap (term, index): a snappb.Snapshot protobuf {crc uint32 = 1,
//     data bytes = 2}, where data is a marshalled raftpb.Snapshot and crc is
//     CRC-32 Castagnoli of data. The raftpb.Snapshot's data is the server's
//     business (etcd 3.6: the v2 store JSON, membership only).
//   - %016x.snap.db (index): a v3 backend (bbolt) file received from the leader.
//   - *.broken: snapshot files that failed to load, renamed aside as etcd does.
//   - tmp*: files being written; leftovers of a crash are removed by Open.
//
// A Snapshotter is safe for concurrent use: it keeps no mutable state, and
// every file appears atomically (written to a tmp file, synced, renamed, and
// the directory synced).
package snap

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/cairnkv/cairn/internal/wal"
)

const (
	snapSuffix   = ".snap"
	dbSuffix     = ".snap.db"
	brokenSuffix = ".broken"
	tmpPrefix    = "tmp"
)

// The sentinel errors of package snap, wrapped with %w by every function.
var (
	// ErrNoSnapshot is returned when no (matching, loadable) .snap file exists.
	ErrNoSnapshot = errors.New("snap: no available snapshot")
	// ErrEmptySnapshot is returned for a .snap file, or its data, that is empty.
	ErrEmptySnapshot = errors.New("snap: empty snapshot")
	// ErrCRCMismatch is returned when a .snap file's data does not match its crc.
	ErrCRCMismatch = errors.New("snap: crc mismatch")
	// ErrBadSnapshot is returned when a .snap file is not a valid protobuf.
	ErrBadSnapshot = errors.New("snap: malformed snapshot file")
	// ErrNoDBSnapshot is returned by DBFilePath when the .snap.db file is missing.
	// Its text is etcd's, which operators see in "failed to find database
	// snapshot file (snap: snapshot file doesn't exist)".
	ErrNoDBSnapshot = errors.New("snap: snapshot file doesn't exist")
)

// CorruptionError marks a .snap file whose content is damaged (bad protobuf,
// empty, or CRC mismatch). Loading renames such a file to <name>.broken.
type CorruptionError struct {
	Path string
	Err  error // ErrEmptySnapshot, ErrCRCMismatch or ErrBadSnapshot
}

func (e *CorruptionError) Error() string { return fmt.Sprintf("snap: %s: %v", e.Path, e.Err) }
func (e *CorruptionError) Unwrap() error { return e.Err }

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Snapshotter reads and writes the snapshot files of one directory.
type Snapshotter struct {
	lg  *zap.Logger
	dir string
}

// New returns a Snapshotter for dir without touching the disk.
func New(lg *zap.Logger, dir string) *Snapshotter {
	if lg == nil {
		lg = zap.NewNop()
	}
	return &Snapshotter{lg: lg, dir: dir}
}

// Open is what a starting member does: it creates dir (mode 0700) if
// missing, removes the tmp* files a crash left behind, and returns a
// Snapshotter for it.
func Open(lg *zap.Logger, dir string) (*Snapshotter, error) {
	s := New(lg, dir)
	if err := fileutil.TouchDirAll(s.lg, dir); err != nil {
		return nil, fmt.Errorf("snap: open %s: %w", dir, err)
	}
	err := fileutil.RemoveMatchFile(s.lg, dir, func(name string) bool { return strings.HasPrefix(name, tmpPrefix) })
	if err != nil {
		return nil, fmt.Errorf("snap: remove tmp files: %w", err)
	}
	return s, nil
}

// Dir is the directory the Snapshotter works in.
func (s *Snapshotter) Dir() string { return s.dir }

// SaveSnap writes snapshot to <term>-<index>.snap durably: the file is
// written under a tmp name, synced, renamed and the directory synced. An
// empty snapshot (index 0) is not saved.
func (s *Snapshotter) SaveSnap(snapshot raftpb.Snapshot) error {
	if raft.IsEmptySnap(snapshot) {
		return nil
	}
	data, err := snapshot.Marshal()
	if err != nil {
		return fmt.Errorf("snap: marshal: %w", err)
	}
	b := encodeSnapFile(data)
	name := fmt.Sprintf("%016x-%016x%s", snapshot.Metadata.Term, snapshot.Metadata.Index, snapSuffix)
	if err := s.writeAtomically(name, func(f *os.File) error {
		_, err := f.Write(b)
		return err
	}); err != nil {
		s.lg.Warn("failed to write a snap file", zap.String("path", filepath.Join(s.dir, name)), zap.Error(err))
		return err
	}
	return nil
}

// encodeSnapFile encodes snappb.Snapshot{Crc, Data} as etcd's gogo code does.
func encodeSnapFile(data []byte) []byte {
	b := make([]byte, 0, len(data)+16)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(crc32.Checksum(data, crcTable)))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, data)
}

// decodeSnapFile parses snappb.Snapshot.
func decodeSnapFile(b []byte) (crc uint32, data []byte, err error) {
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, nil, fmt.Errorf("%w: %v", ErrBadSnapshot, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == 1 && wt == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return 0, nil, fmt.Errorf("%w: crc: %v", ErrBadSnapshot, protowire.ParseError(m))
			}
			crc, n = uint32(v), m
		case num == 2 && wt == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return 0, nil, fmt.Errorf("%w: data: %v", ErrBadSnapshot, protowire.ParseError(m))
			}
			data, n = v, m
		case num == 1 || num == 2:
			return 0, nil, fmt.Errorf("%w: field %d has wire type %d", ErrBadSnapshot, num, wt)
		default:
			n = protowire.ConsumeFieldValue(num, wt, b)
			if n < 0 {
				return 0, nil, fmt.Errorf("%w: %v", ErrBadSnapshot, protowire.ParseError(n))
			}
		}
		b = b[n:]
	}
	return crc, data, nil
}

// Read loads and checks one .snap file. A damaged file gives a *CorruptionError.
func Read(lg *zap.Logger, path string) (*raftpb.Snapshot, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("snap: read: %w", err)
	}
	if len(b) == 0 {
		return nil, &CorruptionError{Path: path, Err: ErrEmptySnapshot}
	}
	crc, data, err := decodeSnapFile(b)
	if err != nil {
		return nil, &CorruptionError{Path: path, Err: err}
	}
	if len(data) == 0 || crc == 0 {
		return nil, &CorruptionError{Path: path, Err: ErrEmptySnapshot}
	}
	if got := crc32.Checksum(data, crcTable); got != crc {
		return nil, &CorruptionError{Path: path, Err: fmt.Errorf("%w: file holds %08x, data has %08x", ErrCRCMismatch, crc, got)}
	}
	var snap raftpb.Snapshot
	if err := snap.Unmarshal(data); err != nil {
		return nil, &CorruptionError{Path: path, Err: fmt.Errorf("%w: raft snapshot: %v", ErrBadSnapshot, err)}
	}
	return &snap, nil
}

// Load returns the newest loadable snapshot. Files that fail to load are
// renamed to <name>.broken, and the next older one is tried.
func (s *Snapshotter) Load() (*raftpb.Snapshot, error) {
	return s.loadMatching(func(*raftpb.Snapshot) bool { return true })
}

// LoadNewestAvailable returns the newest loadable snapshot whose term and
// index match one of walSnaps (wal.ValidSnapshotEntries): a .snap file the
// WAL does not vouch for is skipped.
func (s *Snapshotter) LoadNewestAvailable(walSnaps []wal.Snapshot) (*raftpb.Snapshot, error) {
	return s.loadMatching(func(sn *raftpb.Snapshot) bool {
		m := sn.Metadata
		for i := len(walSnaps) - 1; i >= 0; i-- {
			if m.Term == walSnaps[i].Term && m.Index == walSnaps[i].Index {
				return true
			}
		}
		return false
	})
}

func (s *Snapshotter) loadMatching(match func(*raftpb.Snapshot) bool) (*raftpb.Snapshot, error) {
	names, err := s.snapNames()
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		p := filepath.Join(s.dir, name)
		sn, err := Read(s.lg, p)
		if err != nil {
			s.lg.Warn("failed to read a snap file", zap.String("path", p), zap.Error(err))
			if rerr := os.Rename(p, p+brokenSuffix); rerr != nil {
				s.lg.Warn("failed to rename a broken snap file", zap.String("path", p), zap.Error(rerr))
			} else {
				s.lg.Warn("renamed to a broken snap file", zap.String("path", p), zap.String("broken-path", p+brokenSuffix))
			}
			continue
		}
		if match(sn) {
			return sn, nil
		}
	}
	return nil, ErrNoSnapshot
}

// snapNames lists the .snap files, newest first, after removing db.tmp*
// leftovers of an interrupted defragmentation as etcd does.
func (s *Snapshotter) snapNames() ([]string, error) {
	names, err := fileutil.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("snap: list %s: %w", s.dir, err)
	}
	var snaps []string
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, "db.tmp"):
			s.lg.Info("found orphaned defragmentation file; deleting", zap.String("path", n))
			if err := os.Remove(filepath.Join(s.dir, n)); err != nil && !os.IsNotExist(err) {
				return nil, fmt.Errorf("snap: remove %s: %w", n, err)
			}
		case strings.HasSuffix(n, snapSuffix):
			snaps = append(snaps, n)
		case n != "db":
			s.lg.Warn("found unexpected non-snap file; skipping", zap.String("path", n))
		}
	}
	if len(snaps) == 0 {
		return nil, ErrNoSnapshot
	}
	sort.Sort(sort.Reverse(sort.StringSlice(snaps)))
	return snaps, nil
}

// SaveDBFrom copies r (a v3 backend snapshot received from the leader) to
// <index>.snap.db durably and returns the bytes copied. On error nothing is
// left behind.
func (s *Snapshotter) SaveDBFrom(r io.Reader, index uint64) (int64, error) {
	var n int64
	name := filepath.Base(s.dbFilePath(index))
	err := s.writeAtomically(name, func(f *os.File) error {
		var err error
		n, err = copyPaced(f, r, dbSyncChunk, fileutil.Fdatasync)
		return err
	})
	if err != nil {
		return n, err
	}
	s.lg.Info("saved database snapshot to disk", zap.String("path", s.dbFilePath(index)), zap.Int64("bytes", n))
	return n, nil
}

// dbSyncChunk is how much of a received database is written between
// fdatasyncs. The database can be as large as the backend (GiBs): written in
// one go, the kernel flushes it all at the final fsync, and every other
// fsync on the disk (this member's WAL, and on a shared disk the other
// members') queues behind that flush for seconds.
const dbSyncChunk = 2 << 20

// copyPaced copies r to f, syncing every chunk bytes and then pausing as
// long as that sync took: the copy takes at most about half of the disk's
// time, and other writers' fsyncs never wait behind more than one chunk.
// The pause also slows the reading side, so the sender streams the
// database at the disk's pace. (The receive takes longer; nothing waits
// for it but the member being caught up.)
func copyPaced(f *os.File, r io.Reader, chunk int64, sync func(*os.File) error) (int64, error) {
	var n int64
	for {
		m, err := io.CopyN(f, r, chunk)
		n += m
		if m > 0 {
			start := time.Now()
			if serr := sync(f); serr != nil {
				return n, serr
			}
			if err == nil {
				time.Sleep(time.Since(start))
			}
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// DBFilePath returns the path of <index>.snap.db, or ErrNoDBSnapshot.
func (s *Snapshotter) DBFilePath(index uint64) (string, error) {
	if _, err := fileutil.ReadDir(s.dir); err != nil {
		return "", fmt.Errorf("snap: list %s: %w", s.dir, err)
	}
	fn := s.dbFilePath(index)
	if fileutil.Exist(fn) {
		return fn, nil
	}
	s.lg.Warn("failed to find [SNAPSHOT-INDEX].snap.db", zap.Uint64("snapshot-index", index),
		zap.String("snapshot-file-path", fn), zap.Error(ErrNoDBSnapshot))
	return "", ErrNoDBSnapshot
}

func (s *Snapshotter) dbFilePath(index uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x%s", index, dbSuffix))
}

// ReleaseSnapDBs removes the .snap.db files older than snap, which the
// backend no longer needs once snap is applied.
func (s *Snapshotter) ReleaseSnapDBs(snap raftpb.Snapshot) error {
	names, err := fileutil.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("snap: list %s: %w", s.dir, err)
	}
	for _, n := range names {
		if !strings.HasSuffix(n, dbSuffix) {
			continue
		}
		index, err := strconv.ParseUint(strings.TrimSuffix(n, dbSuffix), 16, 64)
		if err != nil {
			s.lg.Error("failed to parse index from filename", zap.String("path", n), zap.Error(err))
			continue
		}
		if index < snap.Metadata.Index {
			s.lg.Info("found orphaned .snap.db file; deleting", zap.String("path", n))
			if err := os.Remove(filepath.Join(s.dir, n)); err != nil && !os.IsNotExist(err) {
				s.lg.Error("failed to remove orphaned .snap.db file", zap.String("path", n), zap.Error(err))
			}
		}
	}
	return nil
}

// writeAtomically creates dir/name with the content fill writes: into a tmp*
// file first, then fsync, rename and directory fsync. An existing dir/name is
// replaced (names carry the term and index, so its content is the same).
func (s *Snapshotter) writeAtomically(name string, fill func(*os.File) error) (err error) {
	f, err := os.CreateTemp(s.dir, tmpPrefix)
	if err != nil {
		return fmt.Errorf("snap: create tmp: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err = fill(f); err == nil {
		err = fileutil.Fsync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snap: write %s: %w", name, err)
	}
	if err = os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		return fmt.Errorf("snap: rename to %s: %w", name, err)
	}
	if err = fsyncDir(s.dir); err != nil {
		return fmt.Errorf("snap: sync dir after writing %s: %w", name, err)
	}
	return nil
}

func fsyncDir(dir string) error {
	d, err := fileutil.OpenDir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return fileutil.Fsync(d)
}
