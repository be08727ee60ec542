package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/internal/membership"
)

// The peer port's /members/promote/<id> answers as etcd 3.6.16's does.
func TestPromoteHandler(t *testing.T) {
	cfg := testConfig(t.TempDir())
	s := startServer(t, cfg)
	l, _, err := s.AddMember(ctxT(t), []string{"http://127.0.0.1:23999"}, true)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(promotePathPrefix, s.PromoteHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	dec := func(id uint64) string { return strconv.FormatUint(id, 10) }
	for _, tc := range []struct {
		method, id string
		code       int
		body       string
	}{
		{http.MethodGet, dec(l.ID), 405, "Method Not Allowed\n"},
		{http.MethodPost, "abc", 404, "member abc not found in cluster\n"},
		{http.MethodPost, "12345", 404, "membership: ID not found\n"},
		{http.MethodPost, dec(s.ID()), 412, "membership: can only promote a learner member\n"},
		{http.MethodPost, dec(l.ID), 412, "etcdserver: can only promote a learner member which is in sync with leader\n"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+promotePathPrefix+tc.id, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || string(b) != tc.body {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.id, resp.StatusCode, b, tc.code, tc.body)
		}
		if tc.method == http.MethodPost && resp.Header.Get("X-Etcd-Cluster-ID") != membership.FormatID(s.ClusterID()) {
			t.Errorf("%s: cluster ID header %q", tc.id, resp.Header.Get("X-Etcd-Cluster-ID"))
		}
	}
}

// The forwarding side reads etcd's answers: the member list, or the three
// refusals that end the retries.
func TestPromoteAt(t *testing.T) {
	s := startServer(t, testConfig(t.TempDir()))
	members := []*membership.Member{{ID: 7, RaftAttributes: membership.RaftAttributes{PeerURLs: []string{"http://a:1"}}}}
	for _, tc := range []struct {
		code int
		body string
		want error
	}{
		{200, mustJSON(t, members), nil},
		{404, "membership: ID not found\n", membership.ErrIDNotFound},
		{404, "member x not found in cluster\n", membership.ErrIDNotFound},
		{412, "membership: can only promote a learner member\n", membership.ErrMemberNotLearner},
		{412, "etcdserver: can only promote a learner member which is in sync with leader\n", ErrLearnerNotReady},
		{500, `{"message":"Internal Server Error"}`, nil},
	} {
		var path string
		peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			path = r.Method + " " + r.URL.Path
			w.WriteHeader(tc.code)
			io.WriteString(w, tc.body)
		}))
		ms, err := s.promoteAt(ctxT(t), peer.URL, 7)
		peer.Close()
		if path != "POST /members/promote/7" {
			t.Errorf("request %q", path)
		}
		switch {
		case tc.code == 200:
			if err != nil || len(ms) != 1 || ms[0].ID != 7 {
				t.Errorf("200: %v %v", ms, err)
			}
		case tc.want != nil:
			if !errors.Is(err, tc.want) {
				t.Errorf("%d %q: %v, want %v", tc.code, tc.body, err, tc.want)
			}
		default:
			if err == nil || !strings.Contains(err.Error(), "500") {
				t.Errorf("%d: %v", tc.code, err)
			}
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
