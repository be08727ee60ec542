package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.uber.org/zap"
)

// walName is the segment file name: sequence number and the raft index of
// its first entry, both as 16 hex digits.
func walName(seq, index uint64) string {
	return fmt.Sprintf("%016x-%016x.wal", seq, index)
}

func parseWALName(name string) (seq, index uint64, err error) {
	if !strings.HasSuffix(name, ".wal") || len(name) != 16+1+16+4 {
		return 0, 0, fmt.Errorf("bad wal name %q", name)
	}
	if _, err := fmt.Sscanf(name, "%016x-%016x.wal", &seq, &index); err != nil {
		return 0, 0, fmt.Errorf("bad wal name %q: %w", name, err)
	}
	return seq, index, nil
}

// Exist reports whether dir holds at least one *.wal file, which is what
// makes a start a restart (spec B.1).
func Exist(dir string) bool {
	names, err := fileutil.ReadDir(dir, fileutil.WithExt(".wal"))
	return err == nil && len(names) > 0
}

// segmentName is a parsed segment file name.
type segmentName struct {
	name       string
	seq, index uint64
}

// readWALNames lists the segment files of dir in name order (which is
// sequence order), ignoring, with a warning, anything that is not one.
func readWALNames(lg *zap.Logger, dir string) ([]segmentName, error) {
	names, err := fileutil.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: read dir: %w", err)
	}
	var out []segmentName
	for _, n := range names {
		seq, index, err := parseWALName(n)
		if err != nil {
			if !strings.HasSuffix(n, ".tmp") {
				lg.Warn("ignored file in WAL directory", zap.String("path", n))
			}
			continue
		}
		out = append(out, segmentName{name: n, seq: seq, index: index})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("wal: list %s: %w", dir, ErrFileNotFound)
	}
	return out, nil
}

// selectWALFiles returns the segments from the last one whose first index is
// at or below snapIndex (the one holding the snapshot record) to the end.
func selectWALFiles(lg *zap.Logger, dir string, snapIndex uint64) ([]segmentName, error) {
	names, err := readWALNames(lg, dir)
	if err != nil {
		return nil, err
	}
	i := len(names) - 1
	for ; i >= 0 && names[i].index > snapIndex; i-- {
	}
	if i < 0 {
		return nil, fmt.Errorf("wal: no segment holds snapshot index %d: %w", snapIndex, ErrFileNotFound)
	}
	names = names[i:]
	for j := 1; j < len(names); j++ {
		if names[j].seq != names[j-1].seq+1 {
			return nil, fmt.Errorf("wal: %s follows %s: %w", names[j].name, names[j-1].name, ErrBadSequence)
		}
	}
	return names, nil
}

// openReadOnly opens segments without locking them, for readers that must
// not conflict with a WAL open for appending.
func openReadOnly(dir string, names []segmentName) ([]source, func(), error) {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	srcs := make([]source, 0, len(names))
	for _, n := range names {
		p := filepath.Join(dir, n.name)
		f, err := os.Open(p)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("wal: open segment: %w", err)
		}
		files = append(files, f)
		st, err := f.Stat()
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("wal: stat segment: %w", err)
		}
		srcs = append(srcs, source{path: p, r: f, size: st.Size()})
	}
	return srcs, closeAll, nil
}
