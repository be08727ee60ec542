package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// /members/hashkv answers as etcd's peer endpoint does.
func TestHashKVHandler(t *testing.T) {
	s := startServer(t, testConfig(t.TempDir()))
	for i := 0; i < 3; i++ {
		mustPut(t, s, "k", "v")
	}
	if _, err := s.kv.Compact(2); err != nil {
		t.Fatal(err)
	}
	<-s.kv.WaitCompaction()
	srv := httptest.NewServer(s.HashKVHandler())
	defer srv.Close()
	for _, tc := range []struct {
		name, method, body, clusterID string
		code                          int
		want                          string
	}{
		{"current", "GET", `{"revision":0}`, "", 200, `"compact_revision":2`},
		{"at a revision", "GET", `{"revision":3}`, "", 200, `"hash_revision":3`},
		{"compacted", "GET", `{"revision":1}`, "", 400, "mvcc: required revision has been compacted\n"},
		{"future", "GET", `{"revision":99}`, "", 400, "mvcc: required revision is a future revision\n"},
		{"bad json", "GET", `{`, "", 400, "error unmarshalling request\n"},
		{"other cluster", "GET", `{"revision":0}`, "1", 412, "cluster ID mismatch\n"},
		{"method", "POST", `{}`, "", 405, "Method Not Allowed\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL, strings.NewReader(tc.body))
			if tc.clusterID != "" {
				req.Header.Set("X-Etcd-Cluster-ID", tc.clusterID)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.want) {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, b, tc.code, tc.want)
			}
			if tc.code == 200 && resp.Header.Get("X-Etcd-Cluster-ID") == "" {
				t.Fatal("no cluster ID header on 200")
			}
		})
	}
}
