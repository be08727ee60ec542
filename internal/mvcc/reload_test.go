package mvcc

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// drive applies n random write transactions to ts and m.
func drive(t *testing.T, ts *testStore, m *model, rnd *rand.Rand, n int, ci uint64) {
	t.Helper()
	for i := 0; i < n; i++ {
		ops := randOps(rnd)
		w := ts.Write()
		for _, o := range ops {
			var err error
			if o.del {
				_, _, err = w.DeleteRange([]byte(o.key), endBytes(o.end))
			} else {
				_, err = w.Put([]byte(o.key), []byte(o.val), 0)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		w.SetConsistentIndex(ci+uint64(i), 2)
		if err := w.End(); err != nil {
			t.Fatal(err)
		}
		m.apply(ops)
	}
}

// TestReloadAfterReplace installs another store's file under a running
// store (a snapshot from the leader): after Replace and Reload the store is
// the other one, revisions, compaction and consistent index included, and
// goes on from there, also across a restart.
func TestReloadAfterReplace(t *testing.T) {
	rnd := rand.New(rand.NewSource(5))
	cfg := DefaultConfig()
	cfg.CompactionSleepInterval = 0

	// The leader's state: more history, a compaction.
	leader := newTestStore(t, cfg)
	lm := newModel()
	drive(t, leader, lm, rnd, 80, 100)
	ch, err := leader.Compact(lm.rev - 20)
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	lm.compact = lm.rev - 20
	wantCI := leader.ConsistentIndex()
	leader.close()
	snapFile := filepath.Join(t.TempDir(), "0000000000000064.snap.db")
	b, err := os.ReadFile(leader.path)
	if err != nil {
		t.Fatal(err)
	}
	// The follower: another, shorter history, with uncommitted writes.
	follower := newTestStore(t, cfg)
	fm := newModel()
	drive(t, follower, fm, rnd, 10, 1)
	follower.check(fm, rnd)
	if err := os.WriteFile(filepath.Join(filepath.Dir(follower.path), filepath.Base(snapFile)), b, 0o600); err != nil {
		t.Fatal(err)
	}
	<-follower.WaitCompaction()
	if err := follower.b.Replace(filepath.Join(filepath.Dir(follower.path), filepath.Base(snapFile))); err != nil {
		t.Fatal(err)
	}
	if err := follower.Reload(); err != nil {
		t.Fatal(err)
	}
	if follower.ConsistentIndex() != wantCI || follower.CompactRev() != lm.compact {
		t.Fatalf("after reload: consistent index %d (want %d), compacted %d (want %d)", follower.ConsistentIndex(), wantCI, follower.CompactRev(), lm.compact)
	}
	follower.check(lm, rnd)
	drive(t, follower, lm, rnd, 20, wantCI+1)
	follower.check(lm, rnd)
	follower.restart()
	follower.check(lm, rnd)
}
