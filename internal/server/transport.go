package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/rafthttp"
	"github.com/cairnkv/cairn/internal/schema"
)

// peerHTTPClient is the client for requests to peers outside the raft
// streams (/members, /members/hashkv): HTTP/1.1 only, as etcd's peers
// speak, with the peer TLS settings (nil: plain http).
func peerHTTPClient(tlsCfg *tls.Config) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:             nil,
			ForceAttemptHTTP2: false,
			TLSClientConfig:   tlsCfg,
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
		TLSClient:         cfg.PeerTLS,
		Raft:              s,
		SaveSnapshotDB:    s.saveSnapshotDB,
		OnRemoved: func(err error) {
			s.lg.Error("stopping: this member was removed from the cluster", zap.Error(err))
			s.fatal(err)
		},
	})
}

// saveSnapshotDB makes a database received with a snapshot durable as
// <index>.snap.db, and checks it before raft hears of the snapshot: a file
// bbolt cannot open, or whose consistent index is not the snapshot's, is
// removed and refused (as is one cut short or garbled: backend.VerifyFile),
// so a bad upload is never installed (the leader
// sends a new one).
func (s *Server) saveSnapshotDB(r io.Reader, index uint64) (int64, error) {
	n, err := s.store.ss.SaveDBFrom(r, index)
	if err != nil {
		return n, err
	}
	path, err := s.store.ss.DBFilePath(index)
	if err != nil {
		return n, err
	}
	if err := checkSnapshotDB(path, index); err != nil {
		os.Remove(path)
		return n, err
	}
	return n, nil
}

func checkSnapshotDB(path string, index uint64) error {
	if err := backend.VerifyFile(path); err != nil {
		return fmt.Errorf("received snapshot database: %w", err)
	}
	f, err := backend.OpenFile(path, 10*time.Second)
	if err != nil {
		return fmt.Errorf("received snapshot database: %w", err)
	}
	defer f.Close()
	return f.View(func(tx backend.FileTx) error {
		ci, _, err := schema.ReadConsistentIndex(tx)
		if err != nil {
			return fmt.Errorf("received snapshot database: %w", err)
		}
		if ci != index {
			return fmt.Errorf("received snapshot database has consistent index %d, the snapshot is at %d", ci, index)
		}
		return nil
	})
}
