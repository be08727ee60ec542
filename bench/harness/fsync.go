package harness

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// fsyncRecordSize is the size of one append: about one put of an 8 B key and
// a 256 B value as a WAL record.
const fsyncRecordSize = 512

// measureFsyncFloor measures the disk's sequential append + fdatasync rate in
// dir: the physical lower bound of a durable single-client write. The file is
// preallocated first, as etcd's WAL segments are, so each fdatasync flushes
// data and no size metadata. At most count appends, stopped at the deadline.
func measureFsyncFloor(ctx context.Context, dir string, count int, limit time.Duration) (Measurement, error) {
	f, err := os.CreateTemp(dir, "fsync-floor-")
	if err != nil {
		return Measurement{}, err
	}
	name := f.Name()
	defer os.Remove(name)
	defer f.Close()
	fd := int(f.Fd())
	size := int64(count) * fsyncRecordSize
	if err := syscall.Fallocate(fd, 0, 0, size); err != nil {
		if !errors.Is(err, syscall.EOPNOTSUPP) {
			return Measurement{}, err
		}
		if err := f.Truncate(size); err != nil {
			return Measurement{}, err
		}
	}
	if err := f.Sync(); err != nil {
		return Measurement{}, err
	}
	if err := syncDir(filepath.Dir(name)); err != nil {
		return Measurement{}, err
	}
	buf := make([]byte, fsyncRecordSize)
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	lats := make([]float64, 0, count)
	start := time.Now()
	deadline := start.Add(limit)
	for i := 0; i < count; i++ {
		if ctx.Err() != nil {
			return Measurement{}, ctx.Err()
		}
		if i > 0 && time.Now().After(deadline) {
			break
		}
		t := time.Now()
		if _, err := f.WriteAt(buf, int64(i)*fsyncRecordSize); err != nil {
			return Measurement{}, err
		}
		if err := syscall.Fdatasync(fd); err != nil {
			return Measurement{}, err
		}
		lats = append(lats, time.Since(t).Seconds())
	}
	return summarize(lats, nil, time.Since(start)), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
