package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/mvcc"
)

const testWait = 20 * time.Second

func testConfig(dir string) Config {
	peer := "http://127.0.0.1:12380"
	return Config{
		Logger:                     zap.NewNop(),
		Name:                       "m1",
		DataDir:                    dir,
		SnapshotCount:              10000,
		SnapshotCatchUpEntries:     5,
		TickMs:                     10,
		ElectionTicks:              10,
		InitialElectionTickAdvance: true,
		InitialCluster:             map[string][]string{"m1": {peer}},
		InitialClusterToken:        "test-token",
		NewCluster:                 true,
		PeerURLs:                   []string{peer},
		ClientURLs:                 []string{"http://127.0.0.1:12379"},
		MaxTxnOps:                  128,
		MaxRequestBytes:            64 * 1024,
		BackendBatchInterval:       10 * time.Millisecond,
		UnsafeNoFsync:              true,
	}
}

// startServer builds and starts a member and waits until it is ready.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Stop)
	select {
	case <-s.ReadyNotify():
	case err := <-s.Err():
		t.Fatalf("server failed: %v", err)
	case <-time.After(testWait):
		t.Fatal("server not ready")
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, s *Server, k, v string) *pb.PutResponse {
	t.Helper()
	r, err := s.Put(ctxT(t), &pb.PutRequest{Key: []byte(k), Value: []byte(v)})
	if err != nil {
		t.Fatalf("put %s: %v", k, err)
	}
	return r
}

func get(t *testing.T, s *Server, k string, serializable bool) string {
	t.Helper()
	r, err := s.Range(ctxT(t), &pb.RangeRequest{Key: []byte(k), Serializable: serializable})
	if err != nil {
		t.Fatalf("range %s: %v", k, err)
	}
	if len(r.Kvs) == 0 {
		return ""
	}
	return string(r.Kvs[0].Value)
}

func TestKV(t *testing.T) {
	s := startServer(t, testConfig(t.TempDir()))
	if s.Leader() != s.ID() || s.Term() == 0 {
		t.Fatalf("leader %x, id %x, term %d", s.Leader(), s.ID(), s.Term())
	}
	rev0 := s.Rev()
	p := mustPut(t, s, "a", "1")
	if p.Header.Revision != rev0+1 {
		t.Fatalf("put revision %d, want %d", p.Header.Revision, rev0+1)
	}
	for _, serializable := range []bool{false, true} {
		if v := get(t, s, "a", serializable); v != "1" {
			t.Fatalf("serializable=%v: a = %q", serializable, v)
		}
	}
	ctx := ctxT(t)
	tr, err := s.Txn(ctx, &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("1")}}},
		Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("b"), Value: []byte("2")}}}},
	})
	if err != nil || !tr.Succeeded {
		t.Fatalf("txn: %v %v", tr, err)
	}
	// A read-only txn is served locally and changes nothing.
	rev := s.Rev()
	ro, err := s.Txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("b")}}}}})
	if err != nil || len(ro.Responses) != 1 || string(ro.Responses[0].GetResponseRange().Kvs[0].Value) != "2" || s.Rev() != rev {
		t.Fatalf("read-only txn: %v %v (rev %d → %d)", ro, err, rev, s.Rev())
	}
	d, err := s.DeleteRange(ctx, &pb.DeleteRangeRequest{Key: []byte("b")})
	if err != nil || d.Deleted != 1 {
		t.Fatalf("delete: %v %v", d, err)
	}
	mustPut(t, s, "a", "3")
	cr, err := s.Compact(ctx, &pb.CompactionRequest{Revision: s.Rev() - 1, Physical: true})
	if err != nil || cr == nil {
		t.Fatalf("compact: %v", err)
	}
	if _, err := s.Range(ctx, &pb.RangeRequest{Key: []byte("a"), Revision: rev0 + 1}); !errors.Is(err, mvcc.ErrCompacted) {
		t.Fatalf("range below the compaction: %v", err)
	}
	if _, err := s.Compact(ctx, &pb.CompactionRequest{Revision: s.Rev() - 1}); !errors.Is(err, mvcc.ErrCompacted) {
		t.Fatalf("compacting again: %v", err)
	}
	if _, err := s.Range(ctx, &pb.RangeRequest{Key: []byte("a"), Revision: s.Rev() + 10}); !errors.Is(err, mvcc.ErrFutureRev) {
		t.Fatalf("range in the future: %v", err)
	}
	if st, err := s.Status(ctx); err != nil || st.Leader != s.ID() || st.RaftAppliedIndex == 0 || st.Version != Version {
		t.Fatalf("status: %v %v", st, err)
	}
	ms, err := s.MemberList(ctx, true)
	if err != nil || len(ms) != 1 || ms[0].Name != "m1" || ms[0].ID != s.ID() {
		t.Fatalf("member list: %v %v", ms, err)
	}
}

// TestLinearizableVersusSerializable: a serializable read is served from
// local state at once; a linearizable one needs a ReadIndex round and so a
// live context.
func TestLinearizableVersusSerializable(t *testing.T) {
	s := startServer(t, testConfig(t.TempDir()))
	mustPut(t, s, "k", "v")
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if r, err := s.Range(done, &pb.RangeRequest{Key: []byte("k"), Serializable: true}); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("serializable read with a dead context: %v %v", r, err)
	}
	if _, err := s.Range(done, &pb.RangeRequest{Key: []byte("k")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("linearizable read with a dead context: %v", err)
	}
	ro := func(serializable bool) *pb.TxnRequest {
		return &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k"), Serializable: serializable}}}}}
	}
	if _, err := s.Txn(done, ro(true)); err != nil {
		t.Fatalf("serializable txn: %v", err)
	}
	if _, err := s.Txn(done, ro(false)); !errors.Is(err, context.Canceled) {
		t.Fatalf("linearizable txn with a dead context: %v", err)
	}
	// A linearizable read right after a write sees it, from any goroutine.
	errc := make(chan error, 8)
	for i := range 8 {
		go func() {
			k := fmt.Sprint("c", i)
			if _, err := s.Put(context.Background(), &pb.PutRequest{Key: []byte(k), Value: []byte(k)}); err != nil {
				errc <- err
				return
			}
			r, err := s.Range(context.Background(), &pb.RangeRequest{Key: []byte(k)})
			if err == nil && (len(r.Kvs) != 1 || string(r.Kvs[0].Value) != k) {
				err = fmt.Errorf("read of %s after its write: %v", k, r.Kvs)
			}
			errc <- err
		}()
	}
	for range 8 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

func TestRequestTooLarge(t *testing.T) {
	cfg := testConfig(t.TempDir())
	s := startServer(t, cfg)
	ctx := ctxT(t)
	big := make([]byte, cfg.MaxRequestBytes)
	if _, err := s.Put(ctx, &pb.PutRequest{Key: []byte("big"), Value: big}); !errors.Is(err, ErrRequestTooLarge) {
		t.Fatalf("put of %d bytes: %v", len(big), err)
	}
	ops := []*pb.RequestOp{}
	for i := range 4 {
		ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte{byte('a' + i)}, Value: big[:cfg.MaxRequestBytes/3]}}})
	}
	if _, err := s.Txn(ctx, &pb.TxnRequest{Success: ops}); !errors.Is(err, ErrRequestTooLarge) {
		t.Fatalf("large txn: %v", err)
	}
	if _, err := s.Put(ctx, &pb.PutRequest{Key: []byte("fits"), Value: big[:cfg.MaxRequestBytes-200]}); err != nil {
		t.Fatalf("put just under the limit: %v", err)
	}
	if get(t, s, "big", true) != "" {
		t.Fatal("refused put was applied")
	}
}

// TestRestartKeepsDataAndIdentity stops a member and starts it again on the
// same data dir; the second start goes through the restart path.
func TestRestartKeepsDataAndIdentity(t *testing.T) {
	cfg := testConfig(t.TempDir())
	s := startServer(t, cfg)
	for i := range 20 {
		mustPut(t, s, fmt.Sprint("k", i), fmt.Sprint(i))
	}
	id, cid, rev := s.ID(), s.ClusterID(), s.Rev()
	s.Stop()
	s.Stop() // twice is fine

	// Flags that only matter at bootstrap are ignored now.
	cfg.InitialClusterToken = "another-token"
	s2 := startServer(t, cfg)
	if s2.ID() != id || s2.ClusterID() != cid {
		t.Fatalf("identity changed: %x/%x → %x/%x", id, cid, s2.ID(), s2.ClusterID())
	}
	if s2.Rev() != rev {
		t.Fatalf("revision %d after restart, want %d", s2.Rev(), rev)
	}
	for i := range 20 {
		if v := get(t, s2, fmt.Sprint("k", i), false); v != fmt.Sprint(i) {
			t.Fatalf("k%d = %q after restart", i, v)
		}
	}
	if p := mustPut(t, s2, "after", "x"); p.Header.Revision != rev+1 {
		t.Fatalf("first put after restart at revision %d, want %d", p.Header.Revision, rev+1)
	}
}

func snapFiles(t *testing.T, cfg Config) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(cfg.SnapDir(), "*.snap"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSnapshotsAndRestartFromThem: with SnapshotCount 5, applying writes
// leaves .snap files; a restart loads the newest one (membership included)
// and replays only the WAL after it.
func TestSnapshotsAndRestartFromThem(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.SnapshotCount = 5
	cfg.MaxSnapFiles = 2
	s := startServer(t, cfg)
	for i := range 40 {
		mustPut(t, s, fmt.Sprint("k", i), fmt.Sprint(i))
	}
	applied, rev, id := s.AppliedIndex(), s.Rev(), s.ID()
	s.Stop() // the apply loop, snapshots included, has finished
	snaps := snapFiles(t, cfg)
	if len(snaps) == 0 || len(snaps) > 2 {
		t.Fatalf("%d .snap files (SnapshotCount 5, MaxSnapFiles 2, %d entries): %v", len(snaps), applied, snaps)
	}
	for _, f := range snaps {
		name := filepath.Base(f)
		var term, index uint64
		if _, err := fmt.Sscanf(name, "%016x-%016x.snap", &term, &index); err != nil || index == 0 || index > applied {
			t.Fatalf("snap file %s: term %d index %d (applied %d) %v", name, term, index, applied, err)
		}
	}

	s2 := startServer(t, cfg)
	if got := s2.snapshotIndex.Load(); got == 0 || got > applied {
		t.Fatalf("restarted from snapshot index %d (applied was %d)", got, applied)
	}
	if s2.ID() != id || s2.Rev() != rev {
		t.Fatalf("after restart: id %x rev %d, want %x %d", s2.ID(), s2.Rev(), id, rev)
	}
	if ms, err := s2.MemberList(ctxT(t), false); err != nil || len(ms) != 1 || ms[0].Name != "m1" || len(ms[0].PeerURLs) != 1 {
		t.Fatalf("members restored from the snapshot: %v %v", ms, err)
	}
	for i := range 40 {
		if v := get(t, s2, fmt.Sprint("k", i), true); v != fmt.Sprint(i) {
			t.Fatalf("k%d = %q after restart", i, v)
		}
	}
	for i := range 10 {
		mustPut(t, s2, fmt.Sprint("n", i), "x")
	}
	s2.Stop()
	if n := len(snapFiles(t, cfg)); n == 0 || n > 2 {
		t.Fatalf("%d snap files after more writes, want 1..2", n)
	}
	// The WAL was released up to a snapshot: purge keeps at least the
	// segment holding it, and the member still restarts.
	if _, err := os.Stat(cfg.WALPath()); err != nil {
		t.Fatal(err)
	}
	s3 := startServer(t, cfg)
	if v := get(t, s3, "n9", false); v != "x" {
		t.Fatalf("n9 = %q after the second restart", v)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no logger", func(c *Config) { c.Logger = nil }, "no logger"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "empty data dir"},
		{"no tick", func(c *Config) { c.TickMs = 0 }, "bad raft timing"},
		{"one election tick", func(c *Config) { c.ElectionTicks = 1 }, "bad raft timing"},
		{"no snapshot count", func(c *Config) { c.SnapshotCount = 0 }, "snapshot count"},
		{"not in the initial cluster", func(c *Config) { c.Name = "other" }, `couldn't find local name "other"`},
		{"joining with no peer to ask", func(c *Config) { c.NewCluster = false }, "cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			tc.mutate(&cfg)
			s, err := New(cfg)
			if err == nil {
				s.Stop()
				t.Fatal("New accepted the config")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %q, want it to mention %q", err, tc.want)
			}
		})
	}
}
