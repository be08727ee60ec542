package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// fakeKV answers Range for key "foo" and fails it for "old" as a compacted
// read; Put returns an empty header. It records the last Range request and
// its authorization metadata.
type fakeKV struct {
	pb.UnimplementedKVServer
	lastRange *pb.RangeRequest
	lastAuth  []string
}

func (f *fakeKV) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	f.lastRange = r
	md, _ := metadata.FromIncomingContext(ctx)
	f.lastAuth = md.Get("authorization")
	if string(r.Key) == "old" {
		return nil, rpctypes.ErrGRPCCompacted
	}
	return &pb.RangeResponse{
		Header: &pb.ResponseHeader{ClusterId: 1, MemberId: 2, Revision: 3, RaftTerm: 4},
		Kvs:    []*mvccpb.KeyValue{{Key: []byte("foo"), Value: []byte("bar"), CreateRevision: 2, ModRevision: 3, Version: 1}},
		Count:  1,
	}, nil
}

func (f *fakeKV) Put(context.Context, *pb.PutRequest) (*pb.PutResponse, error) {
	return &pb.PutResponse{Header: &pb.ResponseHeader{}}, nil
}

// fakeMaintenance streams a two-chunk snapshot.
type fakeMaintenance struct {
	pb.UnimplementedMaintenanceServer
}

func (*fakeMaintenance) Snapshot(_ *pb.SnapshotRequest, s pb.Maintenance_SnapshotServer) error {
	if err := s.Send(&pb.SnapshotResponse{RemainingBytes: 3, Blob: []byte("ab"), Version: "3.6.0"}); err != nil {
		return err
	}
	return s.Send(&pb.SnapshotResponse{Blob: []byte("c"), Version: "3.6.0"})
}

// startGateway serves the fakes (and Unimplemented Lease) on a gRPC server
// and puts a gateway in front of it; other paths go to a handler that
// answers 418 "next".
func startGateway(t *testing.T) (http.Handler, *fakeKV) {
	t.Helper()
	gs := grpc.NewServer()
	kv := &fakeKV{}
	pb.RegisterKVServer(gs, kv)
	pb.RegisterMaintenanceServer(gs, &fakeMaintenance{})
	pb.RegisterLeaseServer(gs, &pb.UnimplementedLeaseServer{})
	g, err := New(gs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		gs.Stop()
	})
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "next "+r.URL.Path)
	})
	return g.Wrap(next), kv
}

// compact removes the whitespace protojson inserts and turns the
// no-break space it may put after "proto:" in its errors into a space: the
// protobuf module picks both per binary, on purpose, so that nobody depends
// on them (etcd 3.6.16's binary writes ", " between members and a no-break
// space in its errors).
func compact(t *testing.T, b []byte) string {
	t.Helper()
	b = bytes.ReplaceAll(b, []byte("\u00a0"), []byte(" "))
	var out bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if err := json.Compact(&out, line); err != nil {
			return string(b) // not JSON: compare as is
		}
		out.WriteByte('\n')
	}
	return strings.TrimSuffix(out.String(), "\n")
}

func TestGatewayHandler(t *testing.T) {
	h, kv := startGateway(t)
	leaseErr := status.Convert(func() error {
		_, err := (&pb.UnimplementedLeaseServer{}).LeaseGrant(context.Background(), nil)
		return err
	}())
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"range maps int64 to strings and bytes to base64", "POST", "/v3/kv/range", `{"key":"Zm9v"}`, 200,
			`{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"4"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"1","value":"YmFy"}],"count":"1"}`},
		{"v3beta is an alias", "POST", "/v3beta/kv/range", `{"key":"Zm9v"}`, 200,
			`{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"4"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"1","value":"YmFy"}],"count":"1"}`},
		{"unknown fields are ignored", "POST", "/v3/kv/range", `{"key":"Zm9v","nope":1}`, 200,
			`{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"4"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"1","value":"YmFy"}],"count":"1"}`},
		{"zero values are omitted", "POST", "/v3/kv/put", `{"key":"Zm9v"}`, 200, `{"header":{}}`},
		{"server error keeps its code and text", "POST", "/v3/kv/range", `{"key":"b2xk"}`, 400,
			`{"code":11,"message":"etcdserver: mvcc: required revision has been compacted"}`},
		{"unimplemented service answers as gRPC does", "POST", "/v3/lease/grant", `{"TTL":5}`, 501,
			`{"code":12,"message":"` + leaseErr.Message() + `"}`},
		{"bad JSON", "POST", "/v3/kv/range", `notjson`, 400,
			`{"code":3,"message":"invalid character 'o' in literal null (expecting 'u')"}`},
		{"bad base64", "POST", "/v3/kv/range", `{"key":"!!"}`, 400,
			`{"code":3,"message":"proto: (line 1:8): invalid value for bytes field key: \"!!\""}`},
		{"wrong method", "GET", "/v3/kv/range", ``, 501, `{"code":12,"message":"Method Not Allowed"}`},
		{"unknown path under /v3/", "POST", "/v3/kv/nope", `{}`, 404, `{"code":5,"message":"Not Found"}`},
		{"unknown path under /v3beta/", "POST", "/v3beta/nope", `{}`, 404, `{"code":5,"message":"Not Found"}`},
		{"snapshot streams one result per line", "POST", "/v3/maintenance/snapshot", `{}`, 200,
			`{"result":{"remaining_bytes":"3","blob":"YWI=","version":"3.6.0"}}` + "\n" + `{"result":{"blob":"Yw==","version":"3.6.0"}}`},
		{"v3alpha is not the gateway", "POST", "/v3alpha/kv/range", `{}`, 418, `next /v3alpha/kv/range`},
		{"other paths go to the next handler", "GET", "/health", ``, 418, `next /health`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := compact(t, rec.Body.Bytes()); rec.Code != tc.status || got != tc.want {
				t.Fatalf("%s %s %s:\n got %d %s\nwant %d %s", tc.method, tc.path, tc.body, rec.Code, got, tc.status, tc.want)
			}
		})
	}

	// The key arrives decoded, and an Authorization header as gRPC
	// metadata (etcd's auth reads tokens from it).
	req := httptest.NewRequest("POST", "/v3/kv/range", strings.NewReader(`{"key":"Zm9v","serializable":true}`))
	req.Header.Set("Authorization", "tok")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if kv.lastRange == nil || string(kv.lastRange.Key) != "foo" || !kv.lastRange.Serializable ||
		len(kv.lastAuth) != 1 || kv.lastAuth[0] != "tok" {
		t.Fatalf("range request as received: %+v, authorization %q", kv.lastRange, kv.lastAuth)
	}
}

// "/v3" redirects to "/v3/" and non-clean paths to their clean form, as
// http.ServeMux does on etcd's client port.
func TestGatewayRedirects(t *testing.T) {
	h, _ := startGateway(t)
	for path, loc := range map[string]string{"/v3": "/v3/", "//v3/kv/range": "/v3/kv/range"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", path, nil))
		if rec.Code/100 != 3 || rec.Header().Get("Location") != loc {
			t.Errorf("%s: %d Location %q, want a redirect to %q", path, rec.Code, rec.Header().Get("Location"), loc)
		}
	}
}

// Close ends the in-memory listener and may be called again.
func TestGatewayClose(t *testing.T) {
	gs := grpc.NewServer()
	pb.RegisterKVServer(gs, &fakeKV{})
	defer gs.Stop()
	g, err := New(gs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Wrap(http.NotFoundHandler())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v3/kv/range", strings.NewReader(`{"key":"Zm9v"}`)))
	if rec.Code != 200 {
		t.Fatalf("before close: %d %s", rec.Code, rec.Body)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v3/kv/range", strings.NewReader(`{"key":"Zm9v"}`)))
	if rec.Code == 200 {
		t.Fatalf("served after close: %s", rec.Body)
	}
}
