package txn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/status"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/mvcc"
	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// freePort is a port for a reference server (framework.FreePort: below the
// ephemeral range, so no outgoing connection takes it first).
func freePort(t *testing.T) int { return framework.FreePort(t, "127.0.0.1") }

// startEtcd runs a one-member etcd in a temp dir and returns a client.
func startEtcd(t *testing.T, bin string) (*clientv3.Client, string) {
	cport, pport := freePort(t), freePort(t)
	curl, purl := fmt.Sprintf("http://127.0.0.1:%d", cport), fmt.Sprintf("http://127.0.0.1:%d", pport)
	cmd := exec.Command(bin, "--name", "default", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
		"--listen-client-urls", curl, "--advertise-client-urls", curl,
		"--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
		"--initial-cluster", "default="+purl, "--log-level", "error")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("etcd log tail:\n%s", tail(logs.String(), 3000))
		}
	})
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{curl}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return cli, curl
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd did not become ready: %v", err)
		}
	}
}

// etcdErrText is the gRPC message etcd gives for our sentinels (what the API
// layer will translate them to).
func etcdErrText(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, mvcc.ErrCompacted):
		return "etcdserver: mvcc: required revision has been compacted"
	case errors.Is(err, mvcc.ErrFutureRev):
		return "etcdserver: mvcc: required revision is a future revision"
	case errors.Is(err, ErrLeaseNotFound):
		return "etcdserver: requested lease not found"
	case errors.Is(err, ErrKeyNotFound):
		return "etcdserver: key not found"
	case errors.Is(err, ErrDuplicateKey):
		return "etcdserver: duplicate key given in txn request"
	}
	return "unexpected: " + err.Error()
}

func grpcText(err error) string {
	if err == nil {
		return ""
	}
	return status.Convert(err).Message()
}

func clearHeader(h *pb.ResponseHeader) {
	if h != nil {
		h.ClusterId, h.MemberId, h.RaftTerm = 0, 0, 0
	}
}

func clearTxn(r *pb.TxnResponse) {
	clearHeader(r.Header)
	for _, op := range r.Responses {
		switch v := op.Response.(type) {
		case *pb.ResponseOp_ResponseRange:
			clearHeader(v.ResponseRange.Header)
		case *pb.ResponseOp_ResponsePut:
			clearHeader(v.ResponsePut.Header)
		case *pb.ResponseOp_ResponseDeleteRange:
			clearHeader(v.ResponseDeleteRange.Header)
		case *pb.ResponseOp_ResponseTxn:
			clearTxn(v.ResponseTxn)
		}
	}
}

type marshaler interface {
	Marshal() ([]byte, error)
	String() string
}

type gen struct {
	rnd *rand.Rand
	rev func() int64
}

func (g *gen) key() []byte { return []byte(fmt.Sprintf("k%d", g.rnd.Intn(10))) }

func (g *gen) end(key []byte) []byte {
	switch g.rnd.Intn(4) {
	case 0:
		return []byte{0}
	case 1:
		return g.key()
	case 2:
		return []byte(clientv3.GetPrefixRangeEnd(string(key[:1])))
	}
	return nil
}

func (g *gen) rangeReq() *pb.RangeRequest {
	k := g.key()
	r := &pb.RangeRequest{Key: k, RangeEnd: g.end(k)}
	if g.rnd.Intn(3) == 0 {
		r.Limit = int64(g.rnd.Intn(4))
	}
	if g.rnd.Intn(4) == 0 {
		r.Revision = g.rev() - int64(g.rnd.Intn(12)) + 1
	}
	if g.rnd.Intn(3) == 0 {
		r.SortOrder = pb.RangeRequest_SortOrder(g.rnd.Intn(3))
	}
	if g.rnd.Intn(3) == 0 {
		r.SortTarget = pb.RangeRequest_SortTarget(g.rnd.Intn(5))
	}
	r.KeysOnly = g.rnd.Intn(6) == 0
	r.CountOnly = g.rnd.Intn(8) == 0
	if g.rnd.Intn(5) == 0 {
		r.MinModRevision = g.rev() - int64(g.rnd.Intn(8))
	}
	if g.rnd.Intn(5) == 0 {
		r.MaxModRevision = g.rev() - int64(g.rnd.Intn(8))
	}
	if g.rnd.Intn(5) == 0 {
		r.MinCreateRevision = g.rev() - int64(g.rnd.Intn(15))
	}
	if g.rnd.Intn(5) == 0 {
		r.MaxCreateRevision = g.rev() - int64(g.rnd.Intn(15))
	}
	return r
}

func (g *gen) putReq() *pb.PutRequest {
	p := &pb.PutRequest{Key: g.key(), Value: []byte(fmt.Sprint(g.rnd.Intn(5))), PrevKv: g.rnd.Intn(2) == 0}
	switch g.rnd.Intn(12) {
	case 0:
		p.Value, p.IgnoreValue = nil, true
	case 1:
		p.IgnoreLease = true
	case 2:
		p.Lease = 12345 // no such lease
	}
	return p
}

func (g *gen) delReq() *pb.DeleteRangeRequest {
	k := g.key()
	return &pb.DeleteRangeRequest{Key: k, RangeEnd: g.end(k), PrevKv: g.rnd.Intn(2) == 0}
}

func (g *gen) compare() *pb.Compare {
	k := g.key()
	c := &pb.Compare{Key: k, Result: pb.Compare_CompareResult(g.rnd.Intn(4)), Target: pb.Compare_CompareTarget(g.rnd.Intn(5))}
	if g.rnd.Intn(5) == 0 {
		c.RangeEnd = g.end(k)
	}
	n := int64(g.rnd.Intn(int(g.rev()) + 2))
	switch c.Target {
	case pb.Compare_VERSION:
		c.TargetUnion = &pb.Compare_Version{Version: n % 4}
	case pb.Compare_CREATE:
		c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: n}
	case pb.Compare_MOD:
		c.TargetUnion = &pb.Compare_ModRevision{ModRevision: n}
	case pb.Compare_VALUE:
		c.TargetUnion = &pb.Compare_Value{Value: []byte(fmt.Sprint(g.rnd.Intn(5)))}
	case pb.Compare_LEASE:
		c.TargetUnion = &pb.Compare_Lease{Lease: 0}
	}
	return c
}

func (g *gen) ops(depth int) []*pb.RequestOp {
	ops := make([]*pb.RequestOp, g.rnd.Intn(4))
	for i := range ops {
		switch x := g.rnd.Intn(10); {
		case x < 3:
			ops[i] = &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: g.rangeReq()}}
		case x < 7:
			ops[i] = &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: g.putReq()}}
		case x < 9 || depth > 0:
			ops[i] = &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: g.delReq()}}
		default:
			ops[i] = &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: g.txnReq(depth + 1)}}
		}
	}
	return ops
}

// crashesEtcd reports a txn with both a from-key delete and an
// ignore_value/ignore_lease put: etcd 3.6 can panic on those (see check).
func crashesEtcd(ops []*pb.RequestOp) (fromDel, ignorePut bool) {
	for _, op := range ops {
		switch v := op.Request.(type) {
		case *pb.RequestOp_RequestDeleteRange:
			fromDel = fromDel || bytes.Equal(v.RequestDeleteRange.RangeEnd, []byte{0})
		case *pb.RequestOp_RequestPut:
			ignorePut = ignorePut || v.RequestPut.IgnoreValue || v.RequestPut.IgnoreLease
		case *pb.RequestOp_RequestTxn:
			for _, br := range [][]*pb.RequestOp{v.RequestTxn.Success, v.RequestTxn.Failure} {
				d, p := crashesEtcd(br)
				fromDel, ignorePut = fromDel || d, ignorePut || p
			}
		}
	}
	return fromDel, ignorePut
}

func (g *gen) txnReq(depth int) *pb.TxnRequest {
	r := &pb.TxnRequest{Success: g.ops(depth), Failure: g.ops(depth)}
	if depth == 0 {
		for {
			d1, p1 := crashesEtcd(r.Success)
			d2, p2 := crashesEtcd(r.Failure)
			if !(d1 && p1) && !(d2 && p2) {
				break
			}
			r = &pb.TxnRequest{Success: g.ops(depth), Failure: g.ops(depth)}
		}
	}
	for i := g.rnd.Intn(3); i > 0; i-- {
		r.Compare = append(r.Compare, g.compare())
	}
	return r
}

// TestDifferentialEtcd drives one random request sequence through a real
// etcd and through this package and compares every response and error, the
// HashKV at several revisions, and etcdutl's view of the resulting db file.
func TestDifferentialEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real etcd")
	}
	rel := refs.EtcdRelease(t, refs.Default)
	for seed := int64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { differential(t, rel, seed) })
	}
}

func differential(t *testing.T, rel refs.Etcd, seed int64) {
	cli, ep := startEtcd(t, rel.Etcd)
	kvc := pb.NewKVClient(cli.ActiveConnection())

	dbPath := filepath.Join(t.TempDir(), "db")
	bc := backend.DefaultConfig(dbPath)
	bc.MmapSize = 0
	b, err := backend.Open(bc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mvcc.New(b, mvcc.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ex := New(s, nil)
	ctx := context.Background()

	g := &gen{rnd: rand.New(rand.NewSource(seed)), rev: s.Rev}
	same := func(i int, what string, want marshaler, wantErr error, got marshaler, gotErr error) {
		t.Helper()
		if we, ge := grpcText(wantErr), etcdErrText(gotErr); we != ge {
			t.Fatalf("op %d %s: error etcd %q, cairn %q (%v)", i, what, we, ge, gotErr)
		}
		if wantErr != nil {
			return
		}
		wb, _ := want.Marshal()
		gb, _ := got.Marshal()
		if !bytes.Equal(wb, gb) {
			t.Fatalf("op %d %s:\netcd  %s\ncairn %s", i, what, want.String(), got.String())
		}
	}
	checkHash := func(rev int64) {
		t.Helper()
		want, werr := cli.HashKV(ctx, ep, rev)
		got, cur, gerr := s.HashByRev(rev)
		if grpcText(werr) != etcdErrText(gerr) {
			t.Fatalf("hashkv %d: etcd %v, cairn %v", rev, werr, gerr)
		}
		if werr == nil && (want.Hash != got.Hash || want.CompactRevision != got.CompactRevision || want.HashRevision != got.Revision || want.Header.Revision != cur) {
			t.Fatalf("hashkv %d: etcd hash %x compact %d hashrev %d rev %d; cairn %+v rev %d",
				rev, want.Hash, want.CompactRevision, want.HashRevision, want.Header.Revision, got, cur)
		}
	}
	compactions := 0
	for i := 0; i < 800; i++ {
		switch x := g.rnd.Intn(100); {
		case x < 25:
			req := g.putReq()
			want, werr := kvc.Put(ctx, req)
			got, gerr := ex.Put(req, ConsistentIndex{Index: uint64(i + 1)})
			if want != nil {
				clearHeader(want.Header)
			}
			same(i, "put "+req.String(), want, werr, got, gerr)
		case x < 35:
			req := g.delReq()
			want, werr := kvc.DeleteRange(ctx, req)
			got, gerr := ex.DeleteRange(req, ConsistentIndex{Index: uint64(i + 1)})
			if want != nil {
				clearHeader(want.Header)
			}
			same(i, "delete "+req.String(), want, werr, got, gerr)
		case x < 55:
			req := g.rangeReq()
			want, werr := kvc.Range(ctx, req)
			got, gerr := ex.Range(req)
			if want != nil {
				clearHeader(want.Header)
			}
			same(i, "range "+req.String(), want, werr, got, gerr)
		case x < 96:
			req := g.txnReq(0)
			want, werr := kvc.Txn(ctx, req)
			got, gerr := ex.Txn(req, ConsistentIndex{Index: uint64(i + 1)})
			if want != nil {
				clearTxn(want)
			}
			same(i, "txn "+req.String(), want, werr, got, gerr)
		default:
			rev := s.CompactRev() + int64(g.rnd.Intn(int(s.Rev()-s.CompactRev())+1))
			req := &pb.CompactionRequest{Revision: rev, Physical: true}
			want, werr := kvc.Compact(ctx, req)
			got, ch, gerr := ex.Compact(req, ConsistentIndex{Index: uint64(i + 1)})
			if ch != nil {
				<-ch
			}
			if want != nil {
				clearHeader(want.Header)
			}
			same(i, fmt.Sprintf("compact %d", rev), want, werr, got, gerr)
			if werr == nil {
				compactions++
				checkHash(rev)
			}
		}
		if i%25 == 0 {
			checkHash(0)
			checkHash(s.Rev() - int64(g.rnd.Intn(5)))
		}
	}
	checkHash(0)
	checkHash(s.Rev() + 1)
	t.Logf("final revision %d, compaction revision %d, %d compactions", s.Rev(), s.CompactRev(), compactions)

	// etcdutl reads our file: same revision and key count as etcd's data.
	resp, err := cli.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	rev := s.Rev()
	s.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(rel.Etcdutl, "snapshot", "status", dbPath, "-w", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("etcdutl snapshot status: %v\n%s", err, out)
	}
	var st struct {
		Revision int64  `json:"revision"`
		TotalKey int64  `json:"totalKey"`
		Version  string `json:"version"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// etcdutl's revision is the last revision in bucket `key`; a final
	// write-free txn or compaction does not move it in either product.
	if st.TotalKey != resp.Count || st.Version != "3.6.0" || st.Revision > rev {
		t.Fatalf("etcdutl status %s; want totalKey %d, version 3.6.0, revision <= %d", out, resp.Count, rev)
	}
	t.Logf("etcdutl snapshot status: %s", bytes.TrimSpace(out))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
