package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/membership"
)

func TestFetchCluster(t *testing.T) {
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/members" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Etcd-Cluster-ID", "ef37ad9dc622a7c4")
		w.Write([]byte(`[{"id":9372538179322589801,"peerURLs":["http://127.0.0.1:12380"],"name":"n1","clientURLs":["http://127.0.0.1:2379"]}]` + "\n"))
	}))
	defer good.Close()
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Etcd-Cluster-ID", "1")
		w.Write([]byte("[]"))
	}))
	defer empty.Close()
	noHeader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"id":1,"peerURLs":["http://a:1"]}]`))
	}))
	defer noHeader.Close()

	ctx := context.Background()
	rc, err := fetchCluster(ctx, peerHTTPClient(nil), []string{empty.URL, noHeader.URL, "http://127.0.0.1:1", good.URL}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rc.id != 0xef37ad9dc622a7c4 || len(rc.members) != 1 || rc.members[0].ID != 0x8211f1d0f64f3269 || rc.members[0].Name != "n1" {
		t.Fatalf("fetched %+v %+v", rc, rc.members[0])
	}
	if _, err := fetchCluster(ctx, peerHTTPClient(nil), []string{empty.URL, noHeader.URL}, time.Second); err != errNoClusterInfo {
		t.Fatalf("no usable answer: %v", err)
	}
}

func TestAdoptIDs(t *testing.T) {
	cfg := Config{Name: "n2", PeerURLs: []string{"http://127.0.0.1:22380"}, InitialCluster: map[string][]string{
		"n1": {"http://127.0.0.1:12380"}, "n2": {"http://127.0.0.1:22380"}}}
	local := []*membership.Member{
		membership.NewMember("n1", []string{"http://127.0.0.1:12380"}, "", nil),
		membership.NewMember("n2", []string{"http://127.0.0.1:22380"}, "", nil),
	}
	remote := func(urls ...string) remoteCluster {
		rc := remoteCluster{id: 7}
		for i, u := range urls {
			rc.members = append(rc.members, &membership.Member{ID: uint64(100 + i), RaftAttributes: membership.RaftAttributes{PeerURLs: []string{u}}})
		}
		return rc
	}
	ms, id, err := adoptIDs(cfg, local, remote("http://127.0.0.1:12380", "http://127.0.0.1:22380"))
	if err != nil || id != 101 || len(ms) != 2 {
		t.Fatalf("adopt: %v %d %v", ms, id, err)
	}
	for _, tc := range []struct {
		name string
		rc   remoteCluster
		want string
	}{
		{"count", remote("http://127.0.0.1:12380"), "member count is unequal"},
		{"unknown member", remote("http://127.0.0.1:12380", "http://127.0.0.1:32380"), "PeerURLs: no match found for existing member (65, [http://127.0.0.1:32380])"},
	} {
		if _, _, err := adoptIDs(cfg, local, tc.rc); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
