package backend

import (
	"fmt"
	"maps"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"
)

// Range over uncommitted writes equals a map model at every view's
// sequence, whether keys arrive in order (mvcc revisions) or not
// (compaction's deletes, other buckets), with views interleaved with
// writes so that ordered and unordered keys mix between reads.
func TestOverlayRangeMatchesModel(t *testing.T) {
	b := open(t, func(c *Config) { c.BatchInterval = time.Hour; c.BatchLimit = 1 << 30 })
	rnd := rand.New(rand.NewSource(3))
	state := map[string]string{}
	type snap struct {
		v     ReadView
		state map[string]string
	}
	var views []snap
	next := 0
	for round := 0; round < 300; round++ {
		var kvs []string
		for i := 0; i < 1+rnd.Intn(5); i++ {
			var k string
			if rnd.Intn(3) > 0 {
				k = fmt.Sprintf("k%05d", next) // in order
				next++
			} else {
				k = fmt.Sprintf("k%05d", rnd.Intn(next+1)) // anywhere
			}
			if rnd.Intn(4) == 0 {
				kvs = append(kvs, k, "<del>")
				delete(state, k)
			} else {
				v := fmt.Sprint(round)
				kvs = append(kvs, k, v)
				state[k] = v
			}
		}
		put(t, b, kvs...)
		if rnd.Intn(10) == 0 {
			views = append(views, snap{b.Read(), maps.Clone(state)})
		}
		if rnd.Intn(3) == 0 {
			views = append(views, snap{b.Read(), maps.Clone(state)})
			for _, s := range views {
				lo := fmt.Sprintf("k%05d", rnd.Intn(next+1))
				hi := ""
				if rnd.Intn(2) == 0 {
					hi = fmt.Sprintf("k%05d", rnd.Intn(next+1))
				}
				limit := rnd.Intn(3) * 7
				if got, want := dump(s.v, lo, hi, limit), modelRange(s.state, lo, hi, limit); got != want {
					t.Fatalf("round %d: range [%s,%s) limit %d:\ngot  %s\nwant %s", round, lo, hi, limit, got, want)
				}
			}
		}
	}
	for _, s := range views {
		s.v.End()
	}
}

func modelRange(state map[string]string, lo, hi string, limit int) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(state)) {
		if k < lo || (hi != "" && k >= hi) {
			continue
		}
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, k+"="+state[k])
	}
	return "[" + strings.Join(out, " ") + "]"
}

// A watcher catching up reads the newest revisions of bucket `key` while
// the overlay holds a whole batch of uncommitted ones.
func BenchmarkOverlayRangeRecent(b *testing.B) {
	be := open(&testing.T{}, func(c *Config) { c.BatchInterval = time.Hour; c.BatchLimit = 1 << 30 })
	defer be.Close()
	tx := be.Lock()
	for i := 0; i < 10000; i++ {
		tx.PutSeq(bk, []byte(fmt.Sprintf("k%08d", i)), []byte("v"))
	}
	tx.Unlock()
	v := be.Read()
	defer v.End()
	start, end := []byte("k00009900"), []byte("k00010000")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		v.Range(bk, start, end, 0, func(k, v []byte) bool { n++; return true })
		if n != 100 {
			b.Fatal(n)
		}
	}
}
