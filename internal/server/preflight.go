package server

import (
	"errors"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/apply"
	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/schema"
	"github.com/cairnkv/cairn/internal/wal"
)

// ErrDataDirUnsupported is wrapped by the start-up check's refusals: the data
// dir holds state cairn cannot honour yet.
var ErrDataDirUnsupported = errors.New("cairn cannot serve this data dir")

// checkDataDir refuses a data dir holding state cairn cannot honour yet,
// before anything in it is opened for writing, so a refused start leaves
// the data dir byte for byte as it was (bbolt read-only with its shared
// lock, WAL segments read-only without locks).
//
// Refused: a backend written by an etcd newer than 3.6 (storage version);
// auth enabled (serving it without enforcing auth would hand every key to
// anyone); a downgrade in progress;
// and, in the WAL after the backend's consistent index, any entry the
// applier cannot apply as etcd does (apply.Check).
func checkDataDir(lg *zap.Logger, cfg Config) error {
	ci, err := checkBackendFile(cfg.BackendPath())
	if err != nil {
		return err
	}
	if !wal.Exist(cfg.WALPath()) {
		return nil
	}
	return checkWALTail(lg, cfg.WALPath(), ci)
}

// checkBackendFile checks the backend at path, if there is one, and returns
// its consistent index.
func checkBackendFile(path string) (uint64, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	f, err := backend.OpenFile(path, 10*time.Second)
	if err != nil {
		return 0, fmt.Errorf("open backend %s: %w", path, err)
	}
	defer f.Close()
	var ci uint64
	err = f.View(func(tx backend.FileTx) error {
		if v := schema.ReadStorageVersion(tx); schema.NewerStorageVersion(v) {
			return fmt.Errorf("%w: %s has storage version %s, written by an etcd newer than 3.6; cairn reads storage versions up to 3.6. "+
				"Serve it with that etcd release, or migrate it down first (etcdutl migrate --data-dir <dir> --target-version 3.6)",
				ErrDataDirUnsupported, path, v)
		}
		if schema.ReadAuthEnabled(tx) {
			return fmt.Errorf("%w: auth is enabled in %s, and this cairn does not enforce auth yet: it would serve every key to any client without credentials. "+
				"To move this data dir to cairn, run `etcdctl auth disable` on the etcd cluster first (and keep its clients trusted by other means), "+
				"or use a cairn release that enforces auth", ErrDataDirUnsupported, path)
		}
		d, err := schema.ReadDowngrade(tx)
		if err != nil {
			return fmt.Errorf("read backend %s: %w", path, err)
		}
		if d.Enabled {
			return fmt.Errorf("%w: a downgrade of the cluster to %s is in progress in %s, and cairn does not take part in downgrades. "+
				"Finish or cancel it on etcd first (etcdctl downgrade cancel)", ErrDataDirUnsupported, d.TargetVersion, path)
		}
		ci, _, err = schema.ReadConsistentIndex(tx)
		if err != nil {
			return fmt.Errorf("read backend %s: %w", path, err)
		}
		return nil
	})
	return ci, err
}

// checkWALTail reads the WAL in dir, read-only, and checks every normal
// entry after the consistent index ci.
func checkWALTail(lg *zap.Logger, dir string, ci uint64) error {
	snaps, err := wal.ValidSnapshotEntries(lg, dir)
	if err != nil {
		return fmt.Errorf("read wal snapshot entries: %w", err)
	}
	// Any snapshot record at or below ci is a valid place to start: the
	// entries that matter all come after it.
	var from wal.Snapshot
	for _, s := range snaps {
		if s.Index <= ci && s.Index >= from.Index {
			from = s
		}
	}
	w, err := wal.OpenForRead(lg, dir, from)
	if err != nil {
		return fmt.Errorf("open wal: %w", err)
	}
	defer w.Close()
	_, _, ents, err := w.ReadAll()
	if err != nil {
		// Corruption is reported, with the file, by the start that
		// follows; it is not this check's to judge.
		lg.Debug("start-up check could not read the wal", zap.Error(err))
		return nil
	}
	for _, e := range ents {
		if e.Index <= ci {
			continue
		}
		if err := apply.Check(e); err != nil {
			return fmt.Errorf("%w: %w (in %s). The backend's consistent index is %d; cairn will not skip the entry, "+
				"since its state would then differ from what etcd builds from the same log. Let etcd apply it first "+
				"(start etcd on this data dir until it is healthy, then stop it), or use a cairn release that applies it",
				ErrDataDirUnsupported, err, w.SegmentOf(e.Index), ci)
		}
	}
	return nil
}
