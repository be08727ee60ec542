package backend

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// wholeFile writes a closed database spanning a few hundred pages and
// returns its bytes and the size its meta page records (the high-water
// mark; bbolt grows the file beyond it).
func wholeFile(t *testing.T) (data []byte, hwm int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db")
	b, err := Open(DefaultConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	tx := b.Lock()
	if err := tx.CreateBucket([]byte("key")); err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		if err := tx.Put([]byte("key"), []byte(fmt.Sprintf("key-%06d", i)), make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f.View(func(tx FileTx) error { hwm = tx.Size(); return nil })
	f.Close()
	data, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data, hwm
}

// A file cut short inside its data, or garbled, is refused with an error
// (bbolt itself would fault or panic on it); a whole file passes, as does
// one cut only in the unused space bbolt preallocates past its high-water
// mark.
func TestVerifyFile(t *testing.T) {
	data, hwm := wholeFile(t)
	if hwm < 64*4096 || int64(len(data)) <= hwm {
		t.Fatalf("fixture: %d bytes, high-water mark %d", len(data), hwm)
	}
	garble := func(off, n int64) []byte {
		d := append([]byte(nil), data[:hwm]...)
		for i := off; i < off+n; i++ {
			d[i] ^= 0xa5
		}
		return d
	}
	tests := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"whole", data, true},
		{"cut at the high-water mark", data[:hwm], true},
		{"empty", nil, false},
		{"cut inside the meta page", data[:100], false},
		{"one page", data[:4096], false},
		{"meta pages only", data[:8192], false},
		{"cut in the middle", data[:hwm/2], false},
		{"last page missing", data[:hwm-4096], false},
		{"last byte missing", data[:hwm-1], false},
		{"garbled last page", garble(hwm-4096, 4096), false},
		{"garbled middle page", garble(hwm/2/4096*4096, 4096), false},
		// bbolt falls back to the other meta page when one fails its checksum.
		{"garbled first meta page", garble(0, 4096), true},
		{"garbled meta pages", garble(0, 8192), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "snap.db")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			err := VerifyFile(path)
			if tt.ok && err != nil {
				t.Fatalf("a whole file was refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrFileDamaged) {
				t.Fatalf("got %v, want an error wrapping ErrFileDamaged", err)
			}
		})
	}
}
