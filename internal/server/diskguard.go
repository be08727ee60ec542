package server

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"time"
)

// diskGuard refuses new writes while the data dir's file system is nearly
// full, so that a full disk ends in a clear error for the client rather than
// in a failed WAL or backend write that would force the member to stop.
//
// The reserve covers what a write can still need: the WAL's next segment
// (preallocated when a segment is cut), a maximal request in the WAL and in
// the backend, and room for a backend commit.
type diskGuard struct {
	paths    []string
	reserve  uint64
	checkedA atomic.Int64 // unix nanos of the last statfs
	freeA    atomic.Uint64
}

// checkEvery bounds how often statfs runs on the write path.
const checkEvery = 100 * time.Millisecond

// walSegmentBytes is the preallocated size of a WAL segment.
const walSegmentBytes = 64 * 1000 * 1000

func newDiskGuard(maxRequestBytes uint, paths ...string) *diskGuard {
	return &diskGuard{
		paths:   paths,
		reserve: walSegmentBytes + 4*uint64(maxRequestBytes) + 8<<20,
	}
}

// check returns ErrNoDiskSpace when a write could fill the disk.
func (g *diskGuard) check() error {
	now := time.Now().UnixNano()
	if now-g.checkedA.Load() > int64(checkEvery) {
		g.checkedA.Store(now)
		free := ^uint64(0)
		for _, p := range g.paths {
			var st syscall.Statfs_t
			if err := syscall.Statfs(p, &st); err != nil {
				continue
			}
			free = min(free, st.Bavail*uint64(st.Bsize))
		}
		g.freeA.Store(free)
	}
	if free := g.freeA.Load(); free < g.reserve {
		return fmt.Errorf("%w (%d bytes free, %d needed)", ErrNoDiskSpace, free, g.reserve)
	}
	return nil
}
