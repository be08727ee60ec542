package backend

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// fill writes n keys of size bytes, then deletes most of them, so a defrag
// has free pages to reclaim.
func fill(t *testing.T, b *Backend, n, size int) {
	t.Helper()
	val := bytes.Repeat([]byte("x"), size)
	tx := b.Lock()
	for i := range n {
		if err := tx.Put(bk, binary.BigEndian.AppendUint32(nil, uint32(i)), val); err != nil {
			t.Fatal(err)
		}
	}
	tx.Unlock()
	tx = b.Lock()
	for i := range n - n/10 {
		tx.Delete(bk, binary.BigEndian.AppendUint32(nil, uint32(i)))
	}
	tx.Unlock()
	for range 3 {
		b.ForceCommit()
		put(t, b, "tick", "1")
	}
}

// withPause makes the next defrag call pause after its copy until release
// is closed; paused is closed when it gets there.
func withPause(t *testing.T) (paused, release chan struct{}) {
	paused, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	defragPause = func() {
		once.Do(func() { close(paused) })
		<-release
	}
	t.Cleanup(func() { defragPause = nil })
	return paused, release
}

// Writes made while the defrag copies land in the defragmented file: the
// final content is exactly what a model of the writes says, and a write
// completes while the defrag is still running.
func TestDefragKeepsConcurrentWrites(t *testing.T) {
	b := open(t, func(c *Config) { c.BatchLimit = 50 })
	fill(t, b, 3000, 500)
	v0 := b.Read()
	model := contents(v0)
	v0.End()

	paused, release := withPause(t)
	done := make(chan error, 1)
	go func() { done <- b.Defrag() }()
	select {
	case <-paused:
	case <-time.After(10 * time.Second):
		t.Fatal("defrag never reached the end of its copy")
	}
	// The defrag holds no lock now: writes, a new bucket, a commit and
	// reads all go through.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		k := fmt.Sprintf("k%04d", rng.IntN(500))
		tx := b.Lock()
		if i%5 == 4 {
			if err := tx.Delete(bk, []byte(k)); err != nil {
				t.Fatal(err)
			}
			delete(model, k)
		} else {
			v := fmt.Sprintf("v%d", i)
			if err := tx.Put(bk, []byte(k), []byte(v)); err != nil {
				t.Fatal(err)
			}
			model[k] = v
		}
		if err := tx.Unlock(); err != nil {
			t.Fatal(err)
		}
	}
	tx := b.Lock()
	if err := tx.CreateBucket([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Unlock(); err != nil {
		t.Fatal(err)
	}
	tx = b.Lock()
	if err := tx.Put([]byte("new"), []byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	tx.Unlock()
	if err := b.ForceCommit(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("defrag returned while paused: %v", err)
	default:
	}
	sizeBefore := b.Size()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b.Size() >= sizeBefore {
		t.Fatalf("size %d after defrag, %d before", b.Size(), sizeBefore)
	}
	check := func(what string) {
		t.Helper()
		v := b.Read()
		defer v.End()
		got := contents(v)
		if len(got) != len(model) {
			t.Fatalf("%s: %d keys, want %d", what, len(got), len(model))
		}
		for k, want := range model {
			if got[k] != want {
				t.Fatalf("%s: %q = %q, want %q", what, k, got[k], want)
			}
		}
		if val, ok := v.Get([]byte("new"), []byte("a")); !ok || string(val) != "1" {
			t.Fatalf("%s: bucket created during the defrag lost: %q %v", what, val, ok)
		}
	}
	check("after defrag")
	// The same content is on disk: reopen the file.
	path := b.Path()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(path)
	cfg.MmapSize = 0
	var err error
	if b, err = Open(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	check("after reopen")
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "db.tmp.*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// A view opened before the swap keeps reading the old file; Close waits for
// it to end.
func TestDefragOldViewsStayValid(t *testing.T) {
	b := open(t, nil)
	fill(t, b, 500, 200)
	put(t, b, "a", "old")
	b.ForceCommit()
	v := b.Read()
	put(t, b, "a", "new")
	if err := b.Defrag(); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.Get(bk, []byte("a")); string(got) != "old" {
		t.Fatalf("old view reads %q after the swap", got)
	}
	v.End()
	w := b.Read()
	defer w.End()
	if got, _ := w.Get(bk, []byte("a")); string(got) != "new" {
		t.Fatalf("new view reads %q", got)
	}
}

// A defrag interrupted by Close leaves the database as it was and no
// temporary file.
func TestDefragAbortedByClose(t *testing.T) {
	b := open(t, nil)
	fill(t, b, 500, 200)
	put(t, b, "a", "1")
	paused, release := withPause(t)
	done := make(chan error, 1)
	go func() { done <- b.Defrag() }()
	<-paused
	put(t, b, "a", "2")
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	// Close need not wait for the defrag; the defrag notices and gives up.
	// Release it only once Close has begun, or it may finish first.
	deadline := time.Now().Add(10 * time.Second)
	for !b.closed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("Close never began")
		}
		runtime.Gosched()
	}
	close(release)
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("defrag = %v, want ErrClosed", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(b.Path())
	if left, _ := filepath.Glob(filepath.Join(dir, "db.tmp.*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	cfg := DefaultConfig(b.Path())
	cfg.MmapSize = 0
	b2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	v := b2.Read()
	defer v.End()
	if got, _ := v.Get(bk, []byte("a")); string(got) != "2" {
		t.Fatalf("a = %q after the aborted defrag, want 2", got)
	}
	if _, err := os.Stat(b.Path()); err != nil {
		t.Fatal(err)
	}
}

// contents is every key and value of bucket bk in v.
func contents(v ReadView) map[string]string {
	m := map[string]string{}
	v.Range(bk, nil, nil, 0, func(k, val []byte) bool {
		m[string(k)] = string(val)
		return true
	})
	return m
}
