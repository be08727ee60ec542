package server

import (
	"net/http"
	"time"

	"github.com/cairnkv/cairn/internal/membership"
)

// peerHTTPClient is the client for requests to peers outside the raft
// streams (/members at bootstrap): HTTP/1.1 only, as etcd's peers speak.
func peerHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:             nil,
			ForceAttemptHTTP2: false,
			MaxIdleConns:      16,
			IdleConnTimeout:   30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// newTransport builds the peer transport for this member. It returns nil
// until the peer transport exists (single-member operation).
func newTransport(s *Server, cfg Config, cl *membership.Cluster) (peerTransport, error) {
	return nil, nil
}
