package backend

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bk = []byte("b")

func open(t *testing.T, mut func(*Config)) *Backend {
	t.Helper()
	cfg := DefaultConfig(filepath.Join(t.TempDir(), "db"))
	cfg.MmapSize = 0
	if mut != nil {
		mut(&cfg)
	}
	b, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	tx := b.Lock()
	if err := tx.CreateBucket(bk); err != nil {
		t.Fatal(err)
	}
	if err := tx.Unlock(); err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t *testing.T, b *Backend, kvs ...string) {
	t.Helper()
	tx := b.Lock()
	for i := 0; i < len(kvs); i += 2 {
		var err error
		if kvs[i+1] == "<del>" {
			err = tx.Delete(bk, []byte(kvs[i]))
		} else {
			err = tx.Put(bk, []byte(kvs[i]), []byte(kvs[i+1]))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Unlock(); err != nil {
		t.Fatal(err)
	}
}

func dump(v interface {
	Range(bucket, start, end []byte, limit int, fn func(k, v []byte) bool)
}, start, end string, limit int) string {
	var s, e []byte
	if start != "" {
		s = []byte(start)
	}
	if end != "" {
		e = []byte(end)
	}
	var out []string
	v.Range(bk, s, e, limit, func(k, v []byte) bool {
		out = append(out, string(k)+"="+string(v))
		return true
	})
	return fmt.Sprint(out)
}

func TestReadViewSeesUnlockedWritesBeforeCommit(t *testing.T) {
	b := open(t, func(c *Config) { c.BatchInterval = time.Hour })
	put(t, b, "a", "1", "c", "3")
	if err := b.ForceCommit(); err != nil {
		t.Fatal(err)
	}
	old := b.Read()
	put(t, b, "b", "2", "c", "<del>", "d", "4")
	v := b.Read()
	defer v.End()
	if got, want := dump(v, "", "", 0), "[a=1 b=2 d=4]"; got != want {
		t.Fatalf("new view %s, want %s", got, want)
	}
	if got, want := dump(old, "", "", 0), "[a=1 c=3]"; got != want {
		t.Fatalf("old view %s, want %s", got, want)
	}
	old.End()
	if got, want := dump(v, "b", "d", 0), "[b=2]"; got != want {
		t.Fatalf("range %s, want %s", got, want)
	}
	if got, want := dump(v, "a", "", 2), "[a=1 b=2]"; got != want {
		t.Fatalf("limit %s, want %s", got, want)
	}
	if _, ok := v.Get(bk, []byte("c")); ok {
		t.Fatal("deleted key visible")
	}
	if val, ok := v.Get(bk, []byte("d")); !ok || string(val) != "4" {
		t.Fatalf("get d = %q %v", val, ok)
	}
	// A view taken before the next write does not see it; overwrite history.
	put(t, b, "b", "22")
	if val, _ := v.Get(bk, []byte("b")); string(val) != "2" {
		t.Fatalf("view saw a later write: %q", val)
	}
	// The write tx sees its own writes.
	tx := b.Lock()
	tx.Put(bk, []byte("e"), []byte("5"))
	if got, want := dump(tx, "", "", 0), "[a=1 b=22 d=4 e=5]"; got != want {
		t.Fatalf("write tx %s, want %s", got, want)
	}
	tx.Unlock()
}

func TestBatchLimitCommitsAndReopen(t *testing.T) {
	var commits int
	b := open(t, func(c *Config) {
		c.BatchInterval = time.Hour
		c.BatchLimit = 3
		c.OnCommit = func(time.Duration) { commits++ }
	})
	put(t, b, "a", "1", "b", "2")
	if commits != 1 { // the bucket creation, in open
		t.Fatalf("commits = %d before limit", commits)
	}
	put(t, b, "c", "3")
	if commits != 2 {
		t.Fatalf("commits = %d after limit", commits)
	}
	put(t, b, "d", "4")
	path := b.Path()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	b2, err := Open(DefaultConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	v := b2.Read()
	defer v.End()
	if got, want := dump(v, "", "", 0), "[a=1 b=2 c=3 d=4]"; got != want {
		t.Fatalf("after reopen %s, want %s", got, want)
	}
}

func TestPeriodicCommit(t *testing.T) {
	done := make(chan struct{}, 10)
	b := open(t, func(c *Config) {
		c.BatchInterval = time.Millisecond
		c.OnCommit = func(time.Duration) { done <- struct{}{} }
	})
	for len(done) > 0 {
		<-done
	}
	put(t, b, "a", "1")
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no periodic commit")
	}
	// Committed: a fresh bolt reader in the same process sees it.
	var got []byte
	b.wmu.Lock()
	err := b.db.View(func(tx *bolt.Tx) error { got = append(got, tx.Bucket(bk).Get([]byte("a"))...); return nil })
	b.wmu.Unlock()
	if err != nil || string(got) != "1" {
		t.Fatalf("committed value %q %v", got, err)
	}
}

func TestSnapshotAndDefrag(t *testing.T) {
	b := open(t, func(c *Config) { c.BatchLimit = 100 })
	big := bytes.Repeat([]byte("x"), 1000)
	for i := 0; i < 2000; i++ {
		tx := b.Lock()
		k := binary.BigEndian.AppendUint32(nil, uint32(i))
		if err := tx.Put(bk, k, big); err != nil {
			t.Fatal(err)
		}
		tx.Unlock()
	}
	tx := b.Lock()
	for i := 0; i < 1990; i++ {
		tx.Delete(bk, binary.BigEndian.AppendUint32(nil, uint32(i)))
	}
	tx.Unlock()
	// Freed pages leave bbolt's pending list only once no read tx as old
	// as the freeing commit is open: a few commits later.
	for _, k := range []string{"w", "x", "y"} {
		b.ForceCommit()
		put(t, b, k, "1")
	}
	h1, err := b.Hash(nil)
	if err != nil {
		t.Fatal(err)
	}
	sizeBefore := b.Size()
	if b.SizeInUse() >= sizeBefore {
		t.Fatalf("in use %d >= size %d after deletes", b.SizeInUse(), sizeBefore)
	}
	v := b.Read()
	v.End()
	if err := b.Defrag(); err != nil {
		t.Fatal(err)
	}
	if b.Size() >= sizeBefore/4 {
		t.Fatalf("size %d after defrag, before %d", b.Size(), sizeBefore)
	}
	h2, err := b.Hash(nil)
	if err != nil || h1 != h2 {
		t.Fatalf("hash changed by defrag: %x %x %v", h1, h2, err)
	}
	put(t, b, "z", "after-defrag")
	s, err := b.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := s.WriteTo(&buf)
	if err != nil || n != s.Size() || int64(buf.Len()) != n {
		t.Fatalf("snapshot wrote %d of %d: %v", n, s.Size(), err)
	}
	s.Close()
	p := filepath.Join(t.TempDir(), "snap.db")
	os.WriteFile(p, buf.Bytes(), 0o600)
	db, err := bolt.Open(p, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if got := tx.Bucket(bk).Get([]byte("z")); string(got) != "after-defrag" || tx.Bucket(bk).Stats().KeyN != 14 {
			t.Fatalf("snapshot content z=%q keys=%d", got, tx.Bucket(bk).Stats().KeyN)
		}
		return nil
	})
}

// TestConcurrentReadersDuringWrites runs readers against a writer that keeps
// the invariant a == b in every transaction, across many commits; every view
// must see a == b and a value never smaller than one seen before it.
func TestConcurrentReadersDuringWrites(t *testing.T) {
	// Both commit paths: views open during the commit (a large map), and
	// views wait for it (no initial map: every commit may remap).
	for _, mmap := range []int64{0, 1 << 30} {
		t.Run(fmt.Sprintf("mmap=%d", mmap), func(t *testing.T) { testConcurrentReadersDuringWrites(t, mmap) })
	}
}

func testConcurrentReadersDuringWrites(t *testing.T, mmap int64) {
	b := open(t, func(c *Config) { c.BatchInterval = time.Millisecond; c.BatchLimit = 7; c.MmapSize = mmap })
	const n = 3000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, 8)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := b.Read()
				a, _ := v.Get(bk, []byte("a"))
				var vals []uint64
				v.ForEach(bk, func(k, val []byte) bool {
					vals = append(vals, binary.BigEndian.Uint64(val))
					return true
				})
				v.End()
				if len(a) == 0 {
					continue
				}
				av := binary.BigEndian.Uint64(a)
				if len(vals) != 2 || vals[0] != av || vals[1] != av || av < last {
					errc <- fmt.Errorf("inconsistent view: a=%d all=%v last=%d", av, vals, last)
					return
				}
				last = av
			}
		}()
	}
	for i := uint64(1); i <= n; i++ {
		tx := b.Lock()
		val := binary.BigEndian.AppendUint64(nil, i)
		tx.Put(bk, []byte("a"), val)
		tx.Put(bk, []byte("b"), val)
		if err := tx.Unlock(); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 0 {
			if err := b.ForceCommit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
}

// TestReadsDuringCommit holds a commit inside bbolt's Commit (where its
// write and fsync happen) and checks whether a new view waits for it: with
// a memory map the commit cannot outgrow, views open at once and see every
// write made, including those of the transaction whose Unlock commits;
// without one (the commit may remap, which waits for open read
// transactions), views wait until the commit is done.
func TestReadsDuringCommit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mmap  int64
		waits bool
	}{{"fits in the map", 1 << 30, false}, {"may remap", 0, true}} {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t, func(c *Config) { c.MmapSize = tc.mmap; c.BatchInterval = time.Hour; c.BatchLimit = 3 })
			put(t, b, "a", "1")
			entered, release := make(chan struct{}), make(chan struct{})
			b.wmu.Lock()
			b.commitTx = func(tx *bolt.Tx) error {
				close(entered)
				<-release
				return tx.Commit()
			}
			b.wmu.Unlock()
			// The third write reaches BatchLimit: Unlock commits.
			unlocked := make(chan error, 1)
			go func() {
				tx := b.Lock()
				tx.Put(bk, []byte("b"), []byte("2"))
				tx.Put(bk, []byte("c"), []byte("3"))
				unlocked <- tx.Unlock()
			}()
			select {
			case <-entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the commit never started")
			}
			viewed := make(chan string, 1)
			go func() {
				v := b.Read()
				defer v.End()
				viewed <- dump(v, "", "", 0)
			}()
			want := "[a=1 b=2 c=3]"
			if tc.waits {
				select {
				case got := <-viewed:
					t.Fatalf("a view opened during a commit that may remap: %s", got)
				case <-time.After(50 * time.Millisecond):
				}
				close(release)
				if got := <-viewed; got != want {
					t.Fatalf("view after the commit: %s, want %s", got, want)
				}
			} else {
				select {
				case got := <-viewed:
					if got != want {
						t.Fatalf("view during the commit: %s, want %s", got, want)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("a view waited for the commit's write and fsync")
				}
				close(release)
			}
			if err := <-unlocked; err != nil {
				t.Fatal(err)
			}
			v := b.Read()
			defer v.End()
			if got := dump(v, "", "", 0); got != want {
				t.Fatalf("view after the commit: %s, want %s", got, want)
			}
		})
	}
}

// TestReplace swaps in another database file: new views read it, a view
// opened before keeps reading the old one, uncommitted writes are dropped,
// and writes go on against the new file (also after a reopen).
func TestReplace(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig(filepath.Join(dir, "db"))
	cfg.MmapSize = 0
	b, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tx := b.Lock()
	tx.CreateBucket(bk)
	tx.Unlock()
	put(t, b, "a", "old", "b", "old")
	if err := b.ForceCommit(); err != nil {
		t.Fatal(err)
	}
	put(t, b, "uncommitted", "x")
	before := b.Read()

	// The replacement, written as a leader's snapshot would arrive.
	src := filepath.Join(dir, "incoming.snap.db")
	ndb, err := bolt.Open(src, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ndb.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bk)
		if err != nil {
			return err
		}
		return b.Put([]byte("a"), []byte("new"))
	}); err != nil {
		t.Fatal(err)
	}
	ndb.Close()
	if err := b.Replace(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("replace with a missing file succeeded")
	}
	if err := b.Replace(src); err != nil {
		t.Fatal(err)
	}
	if got := dump(before, "", "", 0); got != "[a=old b=old uncommitted=x]" {
		t.Fatalf("view from before the replace: %s", got)
	}
	before.End()
	v := b.Read()
	if got := dump(v, "", "", 0); got != "[a=new]" {
		t.Fatalf("after replace: %s", got)
	}
	v.End()
	put(t, b, "c", "after")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	v = b2.Read()
	defer v.End()
	if got := dump(v, "", "", 0); got != "[a=new c=after]" {
		t.Fatalf("after reopen: %s", got)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Fatalf("the snapshot file is still there: %v", err)
	}
}
