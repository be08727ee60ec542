package wal

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// writeTestWAL writes a one-segment WAL: entries 1..4, then a last Save of
// entry 5 alone (one frame, the last record). It returns the segment path and
// the offsets of the last frame.
func writeTestWAL(t *testing.T, dir string) (string, [2]int64) {
	t.Helper()
	w := mustCreate(t, dir, []byte("md"))
	if err := w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: 4}, ents(1, 1, 4)); err != nil {
		t.Fatal(err)
	}
	last := []raftpb.Entry{{Term: 1, Index: 5, Data: []byte("the last entry, long enough to span several words")}}
	if err := w.Save(raftpb.HardState{}, last); err != nil {
		t.Fatal(err)
	}
	w.Close()
	p := filepath.Join(dir, walName(0, 0))
	fr := frameOffsets(t, p)
	return p, fr[len(fr)-1]
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	es, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// openRepairing does what the server does at start: open and read; on a torn
// tail repair once and retry.
func openRepairing(t *testing.T, dir string) ([]raftpb.Entry, error) {
	t.Helper()
	repaired := false
	for {
		w, err := Open(zap.NewNop(), dir, Snapshot{}, testOpts())
		if err != nil {
			return nil, err
		}
		_, _, es, err := w.ReadAll()
		w.Close()
		if err == nil {
			return es, nil
		}
		if repaired || !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err
		}
		if !Repair(zap.NewNop(), dir) {
			return nil, errors.New("repair failed: " + err.Error())
		}
		repaired = true
	}
}

func TestTornTailEveryOffset(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	seg, last := writeTestWAL(t, base)
	orig, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"truncated", "zeroed"} {
		for k := last[0]; k < last[1]; k++ {
			dir := filepath.Join(t.TempDir(), "wal")
			copyDir(t, base, dir)
			p := filepath.Join(dir, filepath.Base(seg))
			if mode == "truncated" {
				// The write reached the disk up to byte k; the file ends there.
				if err := os.Truncate(p, k); err != nil {
					t.Fatal(err)
				}
			} else {
				// The write reached the disk up to byte k of a preallocated file.
				b := append([]byte(nil), orig...)
				clear(b[k:last[1]])
				if err := os.WriteFile(p, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			es, err := openRepairing(t, dir)
			if err != nil {
				t.Fatalf("%s at %d: %v", mode, k, err)
			}
			want := 4
			if mode == "zeroed" && k >= last[0]+8 && allZero(orig[k:last[1]]) {
				want = 5 // only zero padding was lost: nothing is torn
			}
			if len(es) != want {
				t.Fatalf("%s at %d: %d entries, want %d", mode, k, len(es), want)
			}
			if want == 4 && k > last[0] {
				if _, err := os.Stat(p + ".broken"); err != nil {
					t.Fatalf("%s at %d: no .broken copy: %v", mode, k, err)
				}
			}
			// The repaired WAL appends and reads back.
			w, _, _, _ := mustReadAll(t, dir, Snapshot{})
			if err := w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: 6}, ents(1, 5, 6)); err != nil {
				t.Fatal(err)
			}
			w.Close()
			if es, err := openRepairing(t, dir); err != nil || len(es) != 6 {
				t.Fatalf("%s at %d: after append %d entries, %v", mode, k, len(es), err)
			}
		}
	}
}

// corrupt flips one byte of a segment.
func corrupt(t *testing.T, p string, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	f.ReadAt(b[:], off)
	b[0] ^= 0x40
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// shortenFrame makes the length field at off claim 8 bytes fewer.
func shortenFrame(t *testing.T, p string, off int64) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(b[off:], binary.LittleEndian.Uint64(b[off:])-8)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptionInTheMiddleRefusesToOpen(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	seg, _ := writeTestWAL(t, base)
	frames := frameOffsets(t, seg)
	for _, tc := range []struct {
		name string
		off  func() int64
		want error
	}{
		{"entry data", func() int64 { return frames[4][1] - 3 }, ErrCRCMismatch},
		{"crc field", func() int64 { return frames[4][0] + 8 + 3 }, ErrCRCMismatch},
		{"metadata", func() int64 { return frames[1][0] + 8 + 10 }, ErrCRCMismatch},
		{"length field", func() int64 { return -frames[3][0] }, ErrBadRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "wal")
			copyDir(t, base, dir)
			p := filepath.Join(dir, filepath.Base(seg))
			if off := tc.off(); off >= 0 {
				corrupt(t, p, off)
			} else {
				shortenFrame(t, p, -off)
			}
			_, err := openRepairing(t, dir)
			if err == nil {
				t.Fatal("opened a corrupt WAL")
			}
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error does not name the file: %v", err)
			}
			if !IsCorruption(err) && !strings.Contains(err.Error(), "repair failed") {
				t.Fatalf("not a corruption error: %v", err)
			}
			if Repair(zap.NewNop(), dir) {
				t.Fatal("repair accepted corruption in the middle")
			}
			w, err := Open(nil, dir, Snapshot{}, testOpts())
			if err != nil {
				t.Fatal(err)
			}
			_, _, _, err = w.ReadAll()
			w.Close()
			if !IsCorruption(err) || !errors.Is(err, tc.want) {
				t.Fatalf("ReadAll: %v, want corruption %v", err, tc.want)
			}
			if _, err := Verify(nil, dir, Snapshot{}); !IsCorruption(err) {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

// Corruption of a segment that is not the last is never taken for a torn write.
func TestCorruptionInEarlierSegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, nil)
	big := make([]byte, 20000)
	for i := uint64(1); i <= 10; i++ {
		w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: i}, []raftpb.Entry{{Term: 1, Index: i, Data: big}})
	}
	w.Close()
	names, _ := readWALNames(zap.NewNop(), dir)
	if len(names) < 3 {
		t.Fatalf("%d segments", len(names))
	}
	p := filepath.Join(dir, names[0].name)
	fi, _ := os.Stat(p)
	if err := os.Truncate(p, fi.Size()-100); err != nil {
		t.Fatal(err)
	}
	_, err := openRepairing(t, dir)
	if err == nil || !IsCorruption(err) || !strings.Contains(err.Error(), p) {
		t.Fatalf("got %v", err)
	}
}

func TestReadOnlyToleratesTornTail(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	seg, last := writeTestWAL(t, dir)
	if err := os.Truncate(seg, last[0]+13); err != nil {
		t.Fatal(err)
	}
	r, err := OpenForRead(nil, dir, Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, _, es, err := r.ReadAll()
	if err != nil || len(es) != 4 {
		t.Fatalf("%d entries, %v", len(es), err)
	}
}
