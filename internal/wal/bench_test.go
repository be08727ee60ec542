package wal

import (
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func batch(n int, start uint64) []raftpb.Entry {
	es := make([]raftpb.Entry, n)
	data := make([]byte, 128)
	for i := range es {
		es[i] = raftpb.Entry{Term: 1, Index: start + uint64(i), Data: data}
	}
	return es
}

// Save does not allocate once its buffers have grown (no cut involved).
func TestSaveDoesNotAllocate(t *testing.T) {
	w, err := Create(nil, filepath.Join(t.TempDir(), "wal"), nil, Options{NoFsync: true, SegmentSizeBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	es := batch(16, 1)
	next := uint64(1)
	save := func() {
		for i := range es {
			es[i].Index = next
			next++
		}
		if err := w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: next - 1}, es); err != nil {
			t.Fatal(err)
		}
	}
	save()
	if allocs := testing.AllocsPerRun(100, save); allocs != 0 {
		t.Fatalf("Save allocates %.1f times per call", allocs)
	}
}

func BenchmarkSave16x128NoFsync(b *testing.B) {
	w, err := Create(nil, filepath.Join(b.TempDir(), "wal"), nil, Options{NoFsync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	es := batch(16, 1)
	next := uint64(1)
	b.ReportAllocs()
	b.SetBytes(16 * 128)
	for b.Loop() {
		for i := range es {
			es[i].Index = next
			next++
		}
		if err := w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: next - 1}, es); err != nil {
			b.Fatal(err)
		}
	}
}
