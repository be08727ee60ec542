package txn

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/mvcc"
	"github.com/cairnkv/cairn/internal/schema"
)

// TestCompactionIndexAndScheduleCommitTogether: no backend commit may hold
// a compaction entry's consistent index without its scheduled compaction
// revision, or a crash after that commit would skip the compaction on
// replay. A committer runs flat out while compactions are applied; a
// pre-commit hook (after mvcc's, which writes the index) checks every
// commit.
func TestCompactionIndexAndScheduleCommitTogether(t *testing.T) {
	bc := backend.DefaultConfig(filepath.Join(t.TempDir(), "db"))
	bc.MmapSize = 0
	b, err := backend.Open(bc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mvcc.New(b, mvcc.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); b.Close() })
	e := New(s, nil)
	tx := b.Lock()
	if err := schema.Init(tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Unlock(); err != nil {
		t.Fatal(err)
	}

	var (
		mu         sync.Mutex
		compactAt  = map[uint64]int64{} // entry index → compaction revision
		violations []string
	)
	b.AddPreCommitHook(func(tx *backend.WriteTx) error {
		ci, _, err := schema.ReadConsistentIndex(tx)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if rev, ok := compactAt[ci]; ok {
			v, _ := tx.Get(schema.Meta, schema.ScheduledCompactKey)
			if len(v) < 8 || int64(binary.BigEndian.Uint64(v)) != rev {
				violations = append(violations, fmt.Sprintf("commit with consistent index %d (compaction at %d) holds scheduled revision %x", ci, rev, v))
			}
		}
		return nil
	})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := b.ForceCommit(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	index := uint64(1)
	for i := 0; i < 3000; i++ {
		index++
		if _, err := e.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v")}, ConsistentIndex{Index: index, Term: 2}); err != nil {
			t.Fatal(err)
		}
		index++
		rev := s.Rev()
		mu.Lock()
		compactAt[index] = rev
		mu.Unlock()
		if _, _, err := e.Compact(&pb.CompactionRequest{Revision: rev}, ConsistentIndex{Index: index, Term: 2}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(violations) > 0 {
		t.Fatalf("%d commits split a compaction from its index, e.g. %s", len(violations), violations[0])
	}
}
