package server

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/rafthttp"
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

// newTransport builds the peer transport (etcd 3.6's peer protocol) for
// this member.
func newTransport(s *Server, cfg Config, cl *membership.Cluster) (peerTransport, error) {
	election := time.Duration(cfg.ElectionTicks) * cfg.TickInterval()
	return rafthttp.New(rafthttp.Config{
		Logger:            cfg.Logger,
		LocalID:           cl.LocalID(),
		ClusterID:         cl.ID(),
		LocalURLs:         cfg.PeerURLs,
		ServerVersion:     Version,
		MinClusterVersion: "3.0.0",
		DialTimeout:       time.Second + election,
		Raft:              s,
		OnRemoved: func(err error) {
			s.lg.Error("stopping: this member was removed from the cluster", zap.Error(err))
			s.fatal(err)
		},
	})
}
