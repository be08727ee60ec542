package mvcc

// BenchmarkIndexLookup1M measures a point lookup in an index of 1M keys,
// where cache misses dominate (go test -bench IndexLookup ./internal/mvcc).

import (
	"fmt"
	"testing"
)

func BenchmarkIndexLookup1M(b *testing.B) {
	ti := newTreeIndex()
	keys := make([][]byte, 1<<20)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("/registry/pods/default/pod-%08d", i*7919%(1<<20)))
		ki := &keyIndex{}
		ki.put(Revision{Main: int64(i + 1)})
		ti.insert(string(keys[i]), ki)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ti.lookup(keys[(i*104729)%len(keys)]) == nil {
			b.Fatal("missing")
		}
	}
}
