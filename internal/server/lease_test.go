package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/internal/lease"
	"github.com/cairnkv/cairn/internal/schema"
)

// waitFor polls cond every 20 ms for up to testWait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(testWait); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestLeaseLifecycle(t *testing.T) {
	s := startServer(t, testConfig(t.TempDir()))
	g, err := s.LeaseGrant(ctxT(t), &pb.LeaseGrantRequest{TTL: 60})
	if err != nil {
		t.Fatal(err)
	}
	// etcd's IDs: the request ID generator's next value, top bit cleared;
	// its top 16 bits are the member ID's low 16.
	if g.ID <= 0 || uint64(g.ID)>>48 != s.ID()&0xffff&0x7fff || g.TTL != 60 {
		t.Fatalf("grant: ID %x TTL %d (member %x)", g.ID, g.TTL, s.ID())
	}
	p, err := s.Put(ctxT(t), &pb.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: g.ID})
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := s.LeaseTimeToLive(ctxT(t), &pb.LeaseTimeToLiveRequest{ID: g.ID, Keys: true})
	if err != nil || ttl.GrantedTTL != 60 || ttl.TTL < 58 || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "k" {
		t.Fatalf("time to live: %+v, %v", ttl, err)
	}
	if n, err := s.LeaseRenew(ctxT(t), g.ID); n != 60 || err != nil {
		t.Fatalf("renew: %d, %v", n, err)
	}
	ls, err := s.LeaseLeases(ctxT(t))
	if err != nil || len(ls.Leases) != 1 || ls.Leases[0].ID != g.ID || ls.Header.Revision != p.Header.Revision {
		t.Fatalf("leases: %+v, %v", ls, err)
	}
	r, err := s.LeaseRevoke(ctxT(t), &pb.LeaseRevokeRequest{ID: g.ID})
	if err != nil || r.Header.Revision != p.Header.Revision+1 {
		t.Fatalf("revoke: %+v, %v", r, err)
	}
	if _, err := s.LeaseTimeToLive(ctxT(t), &pb.LeaseTimeToLiveRequest{ID: g.ID}); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("time to live after revoke: %v", err)
	}
	if _, err := s.LeaseRenew(ctxT(t), g.ID); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("renew after revoke: %v", err)
	}
	if get(t, s, "k", false) != "" {
		t.Fatal("key survived the revoke")
	}

	// With 10 ms ticks the minimum TTL is 1 s; the leader expires it.
	short, err := s.LeaseGrant(ctxT(t), &pb.LeaseGrantRequest{ID: 7, TTL: 1})
	if err != nil || short.ID != 7 || short.TTL != 1 {
		t.Fatalf("grant: %+v, %v", short, err)
	}
	start := time.Now()
	waitFor(t, "the lease to expire", func() bool { return !s.lessor.Lookup(7) })
	if d := time.Since(start); d < time.Second-50*time.Millisecond {
		t.Fatalf("a 1 s lease expired after %v", d)
	}
	if _, err := s.LeaseGrant(ctxT(t), &pb.LeaseGrantRequest{ID: 8, TTL: lease.MaxTTL + 1}); !errors.Is(err, lease.ErrTTLTooLarge) {
		t.Fatalf("too large: %v", err)
	}
}

func leaseRecord(t *testing.T, s *Server, id int64) schema.LeaseRecord {
	t.Helper()
	v := s.be.Read()
	defer v.End()
	recs, err := schema.ReadLeases(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no record of lease %x", id)
	return schema.LeaseRecord{}
}

// With LeaseCheckpoint the leader checkpoints the remaining TTL through
// raft; the checkpoint is persisted (cluster version 3.6) and a restarted
// member starts the lease from it, not from the full TTL. A renewal clears
// it first.
func TestLeaseCheckpointSurvivesRestart(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.LeaseCheckpoint = true
	cfg.LeaseCheckpointInterval = time.Second
	s := startServer(t, cfg)
	waitFor(t, "the cluster version", func() bool { return s.ClusterVersion() != "" })
	if _, err := s.LeaseGrant(ctxT(t), &pb.LeaseGrantRequest{ID: 9, TTL: 30}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a checkpoint", func() bool { return leaseRecord(t, s, 9).RemainingTTL > 0 })
	if r := leaseRecord(t, s, 9); r.RemainingTTL >= 30 || r.TTL != 30 {
		t.Fatalf("checkpoint %+v", r)
	}
	s.Stop()
	s = startServer(t, cfg)
	st, err := s.lessor.TimeToLive(9, false)
	waitFor(t, "promotion", func() bool { st, err = s.lessor.TimeToLive(9, false); return err == nil && !st.Demoted })
	if st.Remaining > 29*time.Second+cfg.ElectionTimeout() {
		t.Fatalf("after restart the lease has %v left: the checkpoint was not used", st.Remaining)
	}
	if n, err := s.LeaseRenew(ctxT(t), 9); n != 30 || err != nil {
		t.Fatalf("renew: %d, %v", n, err)
	}
	if r := leaseRecord(t, s, 9); r.RemainingTTL != 0 {
		t.Fatalf("renewal left the checkpoint: %+v", r)
	}
	if st, _ := s.lessor.TimeToLive(9, false); st.Remaining < 29*time.Second {
		t.Fatalf("renewed lease has %v left", st.Remaining)
	}
}

func TestLeasePeerHandler(t *testing.T) {
	s := startServer(t, testConfig(t.TempDir()))
	if _, err := s.LeaseGrant(ctxT(t), &pb.LeaseGrantRequest{ID: 0x42, TTL: 60}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctxT(t), &pb.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: 0x42}); err != nil {
		t.Fatal(err)
	}
	h := s.LeaseHandler()
	do := func(method, path string, body []byte) (int, string, []byte) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, bytes.NewReader(body)))
		b, _ := io.ReadAll(w.Result().Body)
		return w.Code, w.Header().Get("Content-Type"), b
	}
	ka := func(id int64) []byte { b, _ := (&pb.LeaseKeepAliveRequest{ID: id}).Marshal(); return b }
	ttlReq := func(id int64) []byte {
		b, _ := encodeLeaseInternalRequest(&pb.LeaseTimeToLiveRequest{ID: id, Keys: true})
		return b
	}
	for _, c := range []struct {
		method, path string
		body         []byte
		code         int
		text         string
	}{
		{http.MethodGet, LeasePath, nil, 405, "Method Not Allowed\n"},
		{http.MethodPost, LeasePath, []byte{0xff, 0xff}, 400, "error unmarshalling request\n"},
		{http.MethodPost, LeaseInternalPath, []byte{0x0a, 0x05}, 400, "error unmarshalling request\n"},
		{http.MethodPost, LeasePath, make([]byte, 65*1024), 413, "request body too large\n"},
		{http.MethodPost, LeasePath, ka(0x43), 404, "lease not found\n"},
		{http.MethodPost, LeaseInternalPath, ttlReq(0x43), 404, "lease not found\n"},
	} {
		code, _, b := do(c.method, c.path, c.body)
		if code != c.code || string(b) != c.text {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, code, b, c.code, c.text)
		}
	}
	code, ct, b := do(http.MethodPost, LeasePath, ka(0x42))
	var kr pb.LeaseKeepAliveResponse
	if code != 200 || ct != "application/protobuf" || kr.Unmarshal(b) != nil || kr.ID != 0x42 || kr.TTL != 60 || kr.Header != nil {
		t.Fatalf("renew: %d %q %+v", code, ct, kr)
	}
	code, _, b = do(http.MethodPost, LeaseInternalPath, ttlReq(0x42))
	tr, err := decodeLeaseInternalResponse(b)
	if code != 200 || err != nil || tr.ID != 0x42 || tr.GrantedTTL != 60 || tr.TTL < 58 || len(tr.Keys) != 1 || tr.Header == nil {
		t.Fatalf("time to live: %d %+v %v", code, tr, err)
	}
	// A demoted lessor answers "not a primary lessor".
	s.lessor.Demote()
	if code, _, b := do(http.MethodPost, LeasePath, ka(0x42)); code != 400 || !strings.Contains(string(b), "not a primary lessor") {
		t.Fatalf("renew on a demoted lessor: %d %q", code, b)
	}
	if code, _, b := do(http.MethodPost, LeaseInternalPath, ttlReq(0x42)); code != 500 || string(b) != "not a primary lessor\n" {
		t.Fatalf("time to live on a demoted lessor: %d %q", code, b)
	}
}

// The wrappers around LeaseTimeToLive match leasepb's encoding.
func TestLeaseInternalCodec(t *testing.T) {
	b, err := encodeLeaseInternalRequest(&pb.LeaseTimeToLiveRequest{ID: 5, Keys: true})
	if err != nil || string(b) != "\x0a\x04\x08\x05\x10\x01" {
		t.Fatalf("request bytes %x, %v", b, err)
	}
	r, err := decodeLeaseInternalRequest(b)
	if err != nil || r.ID != 5 || !r.Keys {
		t.Fatalf("decode %+v, %v", r, err)
	}
	resp := &pb.LeaseTimeToLiveResponse{Header: &pb.ResponseHeader{}, ID: 5, TTL: 3, GrantedTTL: 4, Keys: [][]byte{[]byte("a")}}
	b, err = encodeLeaseInternalResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeLeaseInternalResponse(b)
	if err != nil || got.ID != 5 || got.TTL != 3 || got.GrantedTTL != 4 || string(got.Keys[0]) != "a" || got.Header == nil {
		t.Fatalf("response round trip %+v, %v", got, err)
	}
}
