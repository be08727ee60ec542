package v3rpc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/cairnkv/cairn/internal/mvcc"
	"github.com/cairnkv/cairn/internal/server"
)

// fakeMember is a Member with a map for a store. Requests that pass
// validation are counted, so tests can tell that a refused request never
// reached the member.
type fakeMember struct {
	// noLeader makes the member know no leader.
	noLeader atomic.Bool
	mu       sync.Mutex
	rev      int64
	kvs      map[string]string
	calls    int
	// db is what SnapshotDB streams; dbSize is the size it claims (-1:
	// len(db)).
	db     []byte
	dbSize int64
	// compactErr is returned by Compact.
	compactErr error
	// learner makes the member a learner; memberErr is what member changes
	// return (cluster_test.go).
	learner   atomic.Bool
	memberErr error
}

const (
	fakeID      = 0x8e9e05c52164694d
	fakeCluster = 0xcdf818194e3a8c32
	fakeTerm    = 7
)

func (f *fakeMember) ID() uint64        { return fakeID }
func (f *fakeMember) ClusterID() uint64 { return fakeCluster }
func (f *fakeMember) Term() uint64      { return fakeTerm }
func (f *fakeMember) Leader() uint64 {
	if f.noLeader.Load() {
		return 0
	}
	return fakeID
}
func (f *fakeMember) Rev() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rev
}

func (f *fakeMember) called() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeMember) Range(_ context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	resp := &pb.RangeResponse{}
	if string(r.Key) == "pinned" {
		// A response that carries its own revision keeps it.
		resp.Header = &pb.ResponseHeader{Revision: 3}
	}
	if v, ok := f.kvs[string(r.Key)]; ok {
		resp.Kvs = []*mvccpb.KeyValue{{Key: r.Key, Value: []byte(v)}}
		resp.Count = 1
	}
	return resp, nil
}

func (f *fakeMember) Put(_ context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.rev++
	f.kvs[string(r.Key)] = string(r.Value)
	return &pb.PutResponse{Header: &pb.ResponseHeader{Revision: f.rev}}, nil
}

func (f *fakeMember) DeleteRange(context.Context, *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return &pb.DeleteRangeResponse{}, nil
}

func (f *fakeMember) Txn(context.Context, *pb.TxnRequest) (*pb.TxnResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return &pb.TxnResponse{Succeeded: true}, nil
}

func (f *fakeMember) Compact(context.Context, *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.compactErr != nil {
		return nil, f.compactErr
	}
	return &pb.CompactionResponse{}, nil
}

func (f *fakeMember) Status(context.Context) (*pb.StatusResponse, error) {
	return &pb.StatusResponse{Version: "3.6.0", Leader: fakeID}, nil
}
func (f *fakeMember) Hash(context.Context) (*pb.HashResponse, error) { return &pb.HashResponse{}, nil }
func (f *fakeMember) HashKV(context.Context, int64) (*pb.HashKVResponse, error) {
	return &pb.HashKVResponse{}, nil
}
func (f *fakeMember) Alarms() []*pb.AlarmMember { return nil }
func (f *fakeMember) Alarm(context.Context, *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	return &pb.AlarmResponse{}, nil
}
func (f *fakeMember) Defragment(context.Context) error { return nil }
func (f *fakeMember) SnapshotDB() (io.ReadCloser, int64, error) {
	size := f.dbSize
	if size < 0 {
		size = int64(len(f.db))
	}
	return io.NopCloser(bytes.NewReader(f.db)), size, nil
}
func (f *fakeMember) MemberList(context.Context, bool) ([]*pb.Member, error) {
	return []*pb.Member{{ID: fakeID, Name: "fake"}}, nil
}

func (f *fakeMember) MoveLeader(_ context.Context, target uint64) error {
	if target != fakeID {
		return server.ErrBadLeaderTransferee
	}
	return nil
}

var _ Member = (*fakeMember)(nil)

// serve runs NewServer over an in-memory listener and returns a clientv3
// config that reaches it, and a raw connection.
func serve(t *testing.T, m Member, o Options) (clientv3.Config, *grpc.ClientConn) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = 1536 * 1024
	}
	gs := NewServer(m, o)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	dial := grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) })
	cfg := clientv3.Config{
		Endpoints:   []string{"bufnet"},
		DialTimeout: 5 * time.Second,
		DialOptions: []grpc.DialOption{dial},
		Logger:      zap.NewNop(),
	}
	conn, err := grpc.NewClient("passthrough:///bufnet", dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return cfg, conn
}

func newClient(t *testing.T, cfg clientv3.Config) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestKVHeadersAndValidationThroughClient(t *testing.T) {
	m := &fakeMember{kvs: map[string]string{}, rev: 41}
	cfg, _ := serve(t, m, Options{MaxTxnOps: 2})
	c := newClient(t, cfg)
	ctx := testCtx(t)

	checkHeader := func(h *pb.ResponseHeader, rev int64) {
		t.Helper()
		if h.ClusterId != fakeCluster || h.MemberId != fakeID || h.RaftTerm != fakeTerm || h.Revision != rev {
			t.Fatalf("header = %+v, want cluster %x member %x term %d revision %d", h, uint64(fakeCluster), uint64(fakeID), fakeTerm, rev)
		}
	}
	pr, err := c.Put(ctx, "k", "v")
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(pr.Header, 42) // the member's own revision is kept
	gr, err := c.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(gr.Header, 42) // no revision in the response: the current one
	if len(gr.Kvs) != 1 || string(gr.Kvs[0].Value) != "v" {
		t.Fatalf("get k = %v", gr.Kvs)
	}
	gr, err = c.Get(ctx, "pinned")
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(gr.Header, 3)
	for _, call := range []func() (*pb.ResponseHeader, error){
		func() (*pb.ResponseHeader, error) {
			r, err := c.Delete(ctx, "k")
			if err != nil {
				return nil, err
			}
			return r.Header, nil
		},
		func() (*pb.ResponseHeader, error) {
			r, err := c.Compact(ctx, 1)
			if err != nil {
				return nil, err
			}
			return r.Header, nil
		},
		func() (*pb.ResponseHeader, error) {
			r, err := c.Status(ctx, "bufnet")
			if err != nil {
				return nil, err
			}
			return r.Header, nil
		},
		func() (*pb.ResponseHeader, error) {
			r, err := c.HashKV(ctx, "bufnet", 0)
			if err != nil {
				return nil, err
			}
			return r.Header, nil
		},
		func() (*pb.ResponseHeader, error) {
			r, err := c.AlarmList(ctx)
			if err != nil {
				return nil, err
			}
			return r.Header, nil
		},
		func() (*pb.ResponseHeader, error) {
			r, err := c.Txn(ctx).Then(clientv3.OpPut("a", "1")).Commit()
			if err != nil {
				return nil, err
			}
			return r.Header, nil
		},
	} {
		h, err := call()
		if err != nil {
			t.Fatal(err)
		}
		checkHeader(h, 42)
	}
	// Like etcd's, the Cluster service's header carries no revision.
	ml, err := c.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(ml.Header, 0)

	// Refused before the member sees them, with etcd's client errors.
	before := m.called()
	for _, tc := range []struct {
		name string
		run  func() error
		want error
	}{
		{"empty key put", func() error { _, err := c.Put(ctx, "", "v"); return err }, rpctypes.ErrEmptyKey},
		{"ignore value with value", func() error { _, err := c.Put(ctx, "k", "v", clientv3.WithIgnoreValue()); return err }, rpctypes.ErrValueProvided},
		{"too many ops", func() error {
			_, err := c.Txn(ctx).Then(clientv3.OpPut("a", "1"), clientv3.OpPut("b", "1"), clientv3.OpPut("c", "1")).Commit()
			return err
		}, rpctypes.ErrTooManyOps},
		{"duplicate key", func() error {
			_, err := c.Txn(ctx).Then(clientv3.OpPut("a", "1"), clientv3.OpDelete("a", clientv3.WithPrefix())).Commit()
			return err
		}, rpctypes.ErrDuplicateKey},
		{"duplicate key in else", func() error {
			_, err := c.Txn(ctx).Else(clientv3.OpPut("a", "1"), clientv3.OpPut("a", "2")).Commit()
			return err
		}, rpctypes.ErrDuplicateKey},
	} {
		if err := tc.run(); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if n := m.called(); n != before {
		t.Fatalf("member called %d times for refused requests", n-before)
	}

	// An error from the member reaches the client as etcd's, even wrapped.
	m.mu.Lock()
	m.compactErr = fmt.Errorf("compact at 5: %w", mvcc.ErrCompacted)
	m.mu.Unlock()
	if _, err := c.Compact(ctx, 5); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("compact err = %v, want %v", err, rpctypes.ErrCompacted)
	}
}

func TestRawValidationAndUnimplemented(t *testing.T) {
	m := &fakeMember{kvs: map[string]string{}}
	_, conn := serve(t, m, Options{MaxTxnOps: 128})
	ctx := testCtx(t)
	kv := pb.NewKVClient(conn)
	_, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("a"), SortOrder: 4})
	if status.Code(err) != codes.InvalidArgument || rpctypes.ErrorDesc(err) != "etcdserver: invalid sort option" {
		t.Fatalf("range with bad sort order: %v", err)
	}
	if _, err := kv.Txn(ctx, &pb.TxnRequest{Success: ops(&pb.RequestOp{})}); !errors.Is(err, rpctypes.ErrGRPCKeyNotFound) {
		t.Fatalf("txn with an empty op: %v", err)
	}
	if m.called() != 0 {
		t.Fatal("member reached")
	}
	if _, err := pb.NewLeaseClient(conn).LeaseGrant(ctx, &pb.LeaseGrantRequest{TTL: 5}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("lease grant: %v", err)
	}
	// MoveLeader on a lone member: to a non-member is refused, to itself
	// succeeds with an empty response (etcd 3.6.16's answers).
	mc := pb.NewMaintenanceClient(conn)
	if _, err := mc.MoveLeader(ctx, &pb.MoveLeaderRequest{TargetID: 1}); !errors.Is(err, rpctypes.ErrGRPCBadLeaderTransferee) {
		t.Fatalf("move leader to a non-member: %v", err)
	}
	if r, err := mc.MoveLeader(ctx, &pb.MoveLeaderRequest{TargetID: fakeID}); err != nil || r.Header != nil {
		t.Fatalf("move leader to itself: %v %v", r, err)
	}
}

func TestSnapshotStream(t *testing.T) {
	db := make([]byte, 3*snapshotChunk+100)
	for i := range db {
		db[i] = byte(i * 7)
	}
	for _, tc := range []struct {
		name  string
		db    []byte
		sizes []int // blob sizes before the checksum message
	}{
		{"several chunks and a tail", db, []int{snapshotChunk, snapshotChunk, snapshotChunk, 100}},
		{"exact chunk", db[:snapshotChunk], []int{snapshotChunk}},
		{"empty", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &fakeMember{db: tc.db, dbSize: -1}
			_, conn := serve(t, m, Options{StorageVersion: "3.6.0"})
			st, err := pb.NewMaintenanceClient(conn).Snapshot(testCtx(t), &pb.SnapshotRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			remaining := uint64(len(tc.db))
			for i := 0; ; i++ {
				resp, err := st.Recv()
				if err == io.EOF {
					t.Fatalf("stream ended after %d messages without a checksum", i)
				}
				if err != nil {
					t.Fatal(err)
				}
				if resp.Version != "3.6.0" {
					t.Fatalf("message %d: version %q", i, resp.Version)
				}
				if resp.Header != nil { // etcd 3.6.16 sends none
					t.Fatalf("message %d has a header: %v", i, resp.Header)
				}
				if i == len(tc.sizes) {
					sum := sha256.Sum256(got)
					if resp.RemainingBytes != 0 || !bytes.Equal(resp.Blob, sum[:]) {
						t.Fatalf("checksum message: remaining %d blob %x, want 0 %x", resp.RemainingBytes, resp.Blob, sum)
					}
					break
				}
				remaining -= uint64(tc.sizes[i])
				if len(resp.Blob) != tc.sizes[i] || resp.RemainingBytes != remaining {
					t.Fatalf("message %d: %d bytes, remaining %d; want %d, %d", i, len(resp.Blob), resp.RemainingBytes, tc.sizes[i], remaining)
				}
				got = append(got, resp.Blob...)
			}
			if _, err := st.Recv(); err != io.EOF {
				t.Fatalf("after the checksum: %v, want EOF", err)
			}
			if !bytes.Equal(got, tc.db) {
				t.Fatal("streamed bytes differ from the backend's")
			}
		})
	}
}

// TestSnapshotTruncatedBackend: a backend copy shorter than announced must
// end the stream with an error, never with a checksum that makes the short
// file look complete.
func TestSnapshotTruncatedBackend(t *testing.T) {
	m := &fakeMember{db: make([]byte, 1000), dbSize: 5000}
	_, conn := serve(t, m, Options{})
	st, err := pb.NewMaintenanceClient(conn).Snapshot(testCtx(t), &pb.SnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			if err == io.EOF {
				t.Fatal("stream ended cleanly")
			}
			break
		}
		if resp.RemainingBytes == 0 {
			t.Fatalf("a message claims the snapshot is complete: %d bytes", len(resp.Blob))
		}
	}
}

// TestSnapshotWithEtcdClient reads a snapshot through clientv3's
// SnapshotWithVersion and applies the checks of etcd's snapshot.Save (a
// SHA-256 trails the data: size % 512 == 32) and of etcdutl's restore (the
// trailing digest is the SHA-256 of the rest). The snapshot package itself
// is not used: it would add go-humanize to go.sum.
func TestSnapshotWithEtcdClient(t *testing.T) {
	db := make([]byte, 3*snapshotChunk+4096) // bbolt files are page multiples
	for i := range db {
		db[i] = byte(i % 251)
	}
	m := &fakeMember{db: db, dbSize: -1}
	cfg, _ := serve(t, m, Options{StorageVersion: "3.6.0"})
	c := newClient(t, cfg)
	resp, err := c.SnapshotWithVersion(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Snapshot.Close()
	b, err := io.ReadAll(resp.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Version != "3.6.0" || resp.Header != nil {
		t.Fatalf("version %q header %v", resp.Version, resp.Header)
	}
	if len(b)%512 != sha256.Size {
		t.Fatalf("sha256 checksum not found [bytes: %d]", len(b))
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	want := sha256.Sum256(body)
	if !bytes.Equal(sum, want[:]) || !bytes.Equal(body, db) {
		t.Fatal("snapshot does not verify")
	}
}
