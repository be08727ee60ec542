package v2http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/v2store"
)

// fakeCluster answers every reconfiguration with err.
type fakeCluster struct {
	fakeServer
	err error
}

func (f *fakeCluster) ClusterID() uint64 { return 0xabc }
func (f *fakeCluster) Leader() uint64    { return 0 }
func (f *fakeCluster) V2Members() []*membership.Member {
	return []*membership.Member{{ID: 0x10, RaftAttributes: membership.RaftAttributes{PeerURLs: []string{"http://a:2380"}}}}
}
func (f *fakeCluster) AddMember(_ context.Context, urls []string, _ bool) (*membership.Member, []*membership.Member, error) {
	if f.err != nil {
		return nil, nil, f.err
	}
	return &membership.Member{ID: 0x20, RaftAttributes: membership.RaftAttributes{PeerURLs: urls}}, nil, nil
}
func (f *fakeCluster) RemoveMember(context.Context, uint64) ([]*membership.Member, error) {
	return nil, f.err
}
func (f *fakeCluster) UpdateMember(context.Context, uint64, []string) ([]*membership.Member, error) {
	return nil, f.err
}
func (f *fakeCluster) V2SelfStats() []byte   { return []byte("{}") }
func (f *fakeCluster) V2LeaderStats() []byte { return nil }

// TestMembersErrors: reconfiguration errors become etcd 3.4's statuses
// and bodies, wrapped or not.
func TestMembersErrors(t *testing.T) {
	wrap := func(e error) error { return fmt.Errorf("server: %w", e) }
	for _, tc := range []struct {
		method, path string
		err          error
		want         string
	}{
		{"DELETE", "/v2/members/1f", wrap(membership.ErrIDRemoved), `410 {"message":"Member permanently removed: 1f"}`},
		{"DELETE", "/v2/members/1f", membership.ErrIDNotFound, `404 {"message":"No such member: 1f"}`},
		{"DELETE", "/v2/members/1f", errors.New("etcdserver: re-configuration failed due to not enough started members"), `500 {"message":"Internal Server Error"}`},
		{"DELETE", "/v2/members/1f", nil, `204 `},
		{"PUT", "/v2/members/1f", wrap(membership.ErrPeerURLExists), `409 {"message":"membership: peerURL exists"}`},
		{"PUT", "/v2/members/1f", wrap(membership.ErrIDNotFound), `404 {"message":"No such member: 1f"}`},
		{"POST", "/v2/members", wrap(membership.ErrIDExists), `409 {"message":"membership: ID exists"}`},
		{"POST", "/v2/members", nil, `201 {"id":"20","name":"","peerURLs":["http://b:2380"],"clientURLs":[]}` + "\n"},
		{"GET", "/v2/members/leader", nil, `503 {"message":"During election"}`},
		{"GET", "/v2/stats/leader", nil, `403 {"message":"not current leader"}`},
	} {
		f := &fakeCluster{err: tc.err}
		f.st = v2store.New()
		h := Wrap(http.NotFoundHandler(), f, zap.NewNop(), time.Second)
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(`{"peerURLs":["http://b:2380"]}`))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		b, _ := io.ReadAll(rec.Body)
		if got := fmt.Sprintf("%d %s", rec.Code, b); got != tc.want {
			t.Errorf("%s %s with %v: %s, want %s", tc.method, tc.path, tc.err, got, tc.want)
		}
	}
}
