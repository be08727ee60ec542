package snap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.uber.org/zap"
)

// Purge removes the oldest files of dir whose names end in suffix until at
// most max remain, and returns the names it removed. max 0 means unlimited
// (nothing is removed), as for etcd's --max-snapshots and --max-wals.
//
// A file is removed only after taking its lock without waiting, so a WAL
// segment still locked by the running WAL (see wal.WAL.ReleaseLockTo) is kept,
// and so is every newer one: purging stops at the first locked file.
//
// It does one pass; the server calls it periodically (etcd: every 30s).
func Purge(lg *zap.Logger, dir, suffix string, max uint) ([]string, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if max == 0 {
		return nil, nil
	}
	all, err := fileutil.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("snap: purge %s: %w", dir, err)
	}
	var names []string
	for _, n := range all {
		if strings.HasSuffix(n, suffix) {
			names = append(names, n)
		}
	}
	var purged []string
	for i := 0; i < len(names)-int(max); i++ {
		p := filepath.Join(dir, names[i])
		l, err := fileutil.TryLockFile(p, os.O_WRONLY, fileutil.PrivateFileMode)
		if err != nil {
			if !errors.Is(err, fileutil.ErrLocked) {
				lg.Warn("failed to lock file", zap.String("path", p), zap.Error(err))
			}
			break
		}
		rerr := os.Remove(p)
		l.Close()
		if rerr != nil {
			lg.Error("failed to remove file", zap.String("path", p), zap.Error(rerr))
			return purged, fmt.Errorf("snap: purge: %w", rerr)
		}
		lg.Info("purged", zap.String("path", p))
		purged = append(purged, names[i])
	}
	return purged, nil
}

// PurgeSnapshots keeps the newest max .snap files of snapDir (--max-snapshots).
func PurgeSnapshots(lg *zap.Logger, snapDir string, max uint) ([]string, error) {
	return Purge(lg, snapDir, snapSuffix, max)
}

// PurgeWALs keeps the newest max .wal segments of walDir (--max-wals), never
// removing one the WAL still holds locked.
func PurgeWALs(lg *zap.Logger, walDir string, max uint) ([]string, error) {
	return Purge(lg, walDir, ".wal", max)
}
