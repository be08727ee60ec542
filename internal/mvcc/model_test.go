package mvcc

import (
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairnkv/cairn/internal/backend"
)

type testStore struct {
	*Store
	t    *testing.T
	path string
	b    *backend.Backend
	cfg  Config
}

func newTestStore(t *testing.T, cfg Config) *testStore {
	ts := &testStore{t: t, path: filepath.Join(t.TempDir(), "db"), cfg: cfg}
	ts.open()
	t.Cleanup(ts.close)
	return ts
}

func (ts *testStore) open() {
	bc := backend.DefaultConfig(ts.path)
	bc.MmapSize = 0
	bc.BatchLimit = 50
	b, err := backend.Open(bc)
	if err != nil {
		ts.t.Fatal(err)
	}
	s, err := New(b, ts.cfg)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.Store, ts.b = s, b
}

func (ts *testStore) close() {
	if ts.Store == nil {
		return
	}
	ts.Store.Close()
	if err := ts.b.Close(); err != nil {
		ts.t.Fatal(err)
	}
	ts.Store = nil
}

func (ts *testStore) restart() { ts.close(); ts.open() }

// model is the reference: the full key-value state after every revision.
type model struct {
	rev     int64
	compact int64
	states  map[int64]map[string]mvccpb.KeyValue
}

func newModel() *model {
	return &model{rev: 1, compact: -1, states: map[int64]map[string]mvccpb.KeyValue{1: {}}}
}

type mop struct {
	del      bool
	key, end string // del: end "" = key only
	val      string
	lease    int64
}

func (m *model) apply(ops []mop) {
	cur := m.states[m.rev]
	next := maps.Clone(cur)
	rev := m.rev + 1
	changed := false
	for _, o := range ops {
		if o.del {
			for _, k := range slices.Sorted(maps.Keys(next)) {
				if inRange(k, o.key, o.end) {
					delete(next, k)
					changed = true
				}
			}
			continue
		}
		kv := mvccpb.KeyValue{Key: []byte(o.key), Value: []byte(o.val), CreateRevision: rev, ModRevision: rev, Version: 1, Lease: o.lease}
		if old, ok := next[o.key]; ok {
			kv.CreateRevision, kv.Version = old.CreateRevision, old.Version+1
		}
		next[o.key] = kv
		changed = true
	}
	if changed {
		m.rev = rev
		m.states[rev] = next
	}
}

func (m *model) rangeAt(rev int64, key, end string, limit int) ([]mvccpb.KeyValue, int) {
	st := m.states[rev]
	var out []mvccpb.KeyValue
	total := 0
	for _, k := range slices.Sorted(maps.Keys(st)) {
		if inRange(k, key, end) {
			total++
			if limit <= 0 || len(out) < limit {
				out = append(out, st[k])
			}
		}
	}
	return out, total
}

func endBytes(e string) []byte {
	if e == "" {
		return nil
	}
	return []byte(e)
}

func (ts *testStore) check(m *model, rnd *rand.Rand) {
	t := ts.t
	t.Helper()
	if ts.Rev() != m.rev {
		t.Fatalf("rev %d, model %d", ts.Rev(), m.rev)
	}
	rt := ts.Read()
	defer rt.End()
	lo := max(m.compact, 1)
	for rev := lo; rev <= m.rev; rev++ {
		key, end := "k", "l"
		if rnd.Intn(3) == 0 {
			key, end = fmt.Sprintf("k%02d", rnd.Intn(12)), []string{"", "\x00", fmt.Sprintf("k%02d", rnd.Intn(12))}[rnd.Intn(3)]
		}
		limit := rnd.Intn(4)
		want, total := m.rangeAt(rev, key, end, limit)
		res, err := rt.Range([]byte(key), endBytes(end), RangeOptions{Rev: rev, Limit: int64(limit)})
		if err != nil {
			t.Fatalf("range %q-%q at %d: %v", key, end, rev, err)
		}
		if res.Count != total || res.Rev != m.rev || fmt.Sprint(res.KVs) != fmt.Sprint(want) {
			t.Fatalf("range %q-%q at %d limit %d:\n got %v count %d rev %d\nwant %v count %d rev %d", key, end, rev, limit, res.KVs, res.Count, res.Rev, want, total, m.rev)
		}
		cnt, err := rt.Range([]byte(key), endBytes(end), RangeOptions{Rev: rev, Count: true})
		if err != nil || cnt.Count != total || cnt.KVs != nil {
			t.Fatalf("count %q-%q at %d: %v %v", key, end, rev, cnt, err)
		}
		// MetaOnly: the same keys, with only what the index knows.
		meta, err := rt.Range([]byte(key), endBytes(end), RangeOptions{Rev: rev, Limit: int64(limit), MetaOnly: true})
		if err != nil {
			t.Fatalf("meta range %q-%q at %d: %v", key, end, rev, err)
		}
		wantMeta := make([]mvccpb.KeyValue, len(want))
		for i, kv := range want {
			wantMeta[i] = mvccpb.KeyValue{Key: kv.Key, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}
		}
		if meta.Count != total || fmt.Sprint(meta.KVs) != fmt.Sprint(wantMeta) {
			t.Fatalf("meta range %q-%q at %d limit %d:\n got %v count %d\nwant %v count %d", key, end, rev, limit, meta.KVs, meta.Count, wantMeta, total)
		}
	}
	if _, err := rt.Range([]byte("k"), nil, RangeOptions{Rev: m.rev + 1}); !errors.Is(err, ErrFutureRev) {
		t.Fatalf("future range: %v", err)
	}
	if m.compact > 1 {
		if _, err := rt.Range([]byte("k"), nil, RangeOptions{Rev: m.compact - 1}); !errors.Is(err, ErrCompacted) {
			t.Fatalf("compacted range: %v", err)
		}
	}
}

func randOps(rnd *rand.Rand) []mop {
	ops := make([]mop, 1+rnd.Intn(3))
	for i := range ops {
		k := fmt.Sprintf("k%02d", rnd.Intn(12))
		if rnd.Intn(4) == 0 {
			ops[i] = mop{del: true, key: k, end: []string{"", "\x00", fmt.Sprintf("k%02d", rnd.Intn(12))}[rnd.Intn(3)]}
		} else {
			ops[i] = mop{key: k, val: fmt.Sprint(rnd.Intn(1000))}
		}
	}
	return ops
}

// TestModel drives random transactions, compactions and restarts and
// compares every readable revision with the map model after each step.
func TestModel(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rnd := rand.New(rand.NewSource(seed))
			cfg := DefaultConfig()
			cfg.CompactionBatchLimit = 3
			cfg.CompactionSleepInterval = 0
			var evRev int64
			var evs int
			cfg.OnEvents = func(rev int64, e []mvccpb.Event) { evRev, evs = rev, len(e) }
			ts := newTestStore(t, cfg)
			m := newModel()
			for step := 0; step < 300; step++ {
				switch x := rnd.Intn(40); {
				case x == 0:
					ts.restart()
				case x < 4 && m.rev > 1:
					rev := m.compact + 1 + rnd.Int63n(m.rev-m.compact)
					ch, err := ts.Compact(rev)
					if err != nil {
						t.Fatalf("compact %d: %v", rev, err)
					}
					if rnd.Intn(2) == 0 {
						<-ch
					}
					m.compact = rev
					if _, err := ts.Compact(rev); !errors.Is(err, ErrCompacted) {
						t.Fatalf("compact again: %v", err)
					}
				default:
					ops := randOps(rnd)
					w := ts.Write()
					evs = 0
					var n int
					for _, o := range ops {
						if o.del {
							d, _, err := w.DeleteRange([]byte(o.key), endBytes(o.end))
							if err != nil {
								t.Fatal(err)
							}
							n += int(d)
						} else {
							if _, err := w.Put([]byte(o.key), []byte(o.val), 0); err != nil {
								t.Fatal(err)
							}
							n++
						}
					}
					w.SetConsistentIndex(uint64(step+1), 1)
					if err := w.End(); err != nil {
						t.Fatal(err)
					}
					m.apply(ops)
					if n > 0 && (evs != n || evRev != m.rev) {
						t.Fatalf("events %d at %d, want %d at %d", evs, evRev, n, m.rev)
					}
				}
				ts.check(m, rnd)
			}
			<-ts.WaitCompaction()
			h1, _, err := ts.HashByRev(0)
			if err != nil {
				t.Fatal(err)
			}
			ci := ts.ConsistentIndex()
			ts.restart()
			h2, _, err := ts.HashByRev(0)
			if err != nil || h1 != h2 {
				t.Fatalf("hash changed across restart: %+v %+v %v", h1, h2, err)
			}
			if ts.ConsistentIndex() != ci || ci == 0 {
				t.Fatalf("consistent index %d after restart, want %d", ts.ConsistentIndex(), ci)
			}
		})
	}
}

// TestConcurrentReadsDuringWritesAndCompaction checks under -race that
// readers always see a consistent revision: keys a and b are written
// together and must read equal.
func TestConcurrentReadsDuringWritesAndCompaction(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CompactionBatchLimit = 10
	ts := newTestStore(t, cfg)
	stop := make(chan struct{})
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				rt := ts.Read()
				res, err := rt.Range([]byte("a"), []byte("c"), RangeOptions{})
				rev := rt.Rev()
				rt.End()
				if err != nil {
					errc <- err
					return
				}
				if rev > 1 && (len(res.KVs) != 2 || string(res.KVs[0].Value) != string(res.KVs[1].Value) || res.KVs[0].ModRevision != rev) {
					errc <- fmt.Errorf("inconsistent read at %d: %v", rev, res.KVs)
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; i < 2000 && time.Now().Before(deadline); i++ {
		w := ts.Write()
		v := []byte(fmt.Sprint(i))
		w.Put([]byte("a"), v, 0)
		w.Put([]byte("b"), v, 0)
		if err := w.End(); err != nil {
			t.Fatal(err)
		}
		if i%200 == 199 {
			if _, err := ts.Compact(ts.Rev() - 10); err != nil {
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

// inRange is etcd's key range: end "" is the key alone, "\x00" everything
// from key, otherwise [key, end).
func inRange(k, key, end string) bool {
	if end == "" {
		return k == key
	}
	return k >= key && (end == "\x00" || k < end)
}
