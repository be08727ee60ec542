package rafthttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// Raft is where received messages go and where delivery problems are
// reported; the server implements it.
//
// Threading: every method may be called from any transport goroutine
// (stream readers, pipeline workers, HTTP handlers) concurrently. None of
// them is ever called from inside Transport.Send, Transport.AddPeer,
// RemovePeer or UpdatePeer, so an implementation may block on the goroutine
// that calls those (raftnode's loop does). ReportUnreachable and
// ReportSnapshot are called from one reporter goroutine, in the order the
// transport decided them.
//
// Ownership: Process owns m once called; the transport never touches it
// again.
type Raft interface {
	// Process steps m into raft. It may block until raft accepts it or ctx
	// is done. The transport has already refused messages from removed
	// members, messages whose To is not the local member, link heartbeats
	// and MsgSnap, so Process sees only messages for this member.
	Process(ctx context.Context, m raftpb.Message) error
	// IsIDRemoved reports whether id was removed from the cluster.
	IsIDRemoved(id uint64) bool
	// ReportUnreachable tells raft the last message to id may be lost.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells raft how sending a snapshot to id ended.
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
}

// Config configures a Transport. The zero value of each optional field
// selects the default named on it; New fills defaults in, Validate only
// checks.
type Config struct {
	// Logger receives the transport's log lines (etcd's messages and
	// field names where etcd has them). Default: zap.NewNop().
	Logger *zap.Logger
	// LocalID is this member's ID; required, non-zero.
	LocalID uint64
	// ClusterID is the cluster's ID; required, non-zero. Compared with
	// every request's X-Etcd-Cluster-ID as an exact hex string.
	ClusterID uint64
	// LocalURLs are this member's advertised peer URLs, sent sorted and
	// comma-joined as X-PeerURLs so that a peer that does not know us yet
	// can answer through the pipeline. May be empty (no header is sent).
	LocalURLs []string
	// ServerVersion is what this member reports as X-Server-Version on
	// requests and stream answers. Default "3.6.0" (spec 7.6: it must be a
	// valid three-part version no higher than any etcd 3.6 patch).
	ServerVersion string
	// MinClusterVersion is sent as X-Min-Cluster-Version and is the lowest
	// peer server version accepted. Default "3.0.0".
	MinClusterVersion string
	// DialTimeout bounds each TCP (and TLS) connection attempt to a peer.
	// etcd uses 1 s + the election timeout. Default 2 s. Range: > 0.
	DialTimeout time.Duration
	// TLSClient is the client TLS configuration for https peer URLs; nil
	// means Go's defaults (system roots) for https and plain http
	// otherwise. The transport never offers "h2" in ALPN whatever
	// NextProtos holds: etcd's peer listener answers h2 with an empty
	// reply. Not modified; the transport uses a copy.
	TLSClient *tls.Config
	// Raft receives messages and reports; required.
	Raft Raft
	// SaveSnapshotDB makes the database that follows a snapshot message on
	// /raft/snapshot durable as <index>.snap.db and returns its size; the
	// message goes to raft only after it returned nil. nil refuses
	// snapshots (500). Called from HTTP handler goroutines.
	SaveSnapshotDB func(r io.Reader, index uint64) (int64, error)
	// OnRemoved is called once, from a transport goroutine, when a peer
	// tells this member it was removed from the cluster (a 410 answer to a
	// stream dial or a 403 answer to a pipeline POST). err wraps
	// ErrMemberRemoved. The member must stop; etcd logs
	// "data-dir used by this member must be removed". It must not block
	// for long. May be nil (the transport only logs).
	OnRemoved func(err error)
}

// Default values of the optional Config fields.
const (
	DefaultServerVersion     = "3.6.0"
	DefaultMinClusterVersion = "3.0.0"
	DefaultDialTimeout       = 2 * time.Second
)

// withDefaults returns c with the zero optional fields set to their
// defaults.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.ServerVersion == "" {
		c.ServerVersion = DefaultServerVersion
	}
	if c.MinClusterVersion == "" {
		c.MinClusterVersion = DefaultMinClusterVersion
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	return c
}

// Validate checks c as New would use it (after defaults). It does not
// change c.
func (c Config) Validate() error {
	var errs []error
	if c.LocalID == 0 {
		errs = append(errs, errors.New("LocalID must be non-zero"))
	}
	if c.ClusterID == 0 {
		errs = append(errs, errors.New("ClusterID must be non-zero"))
	}
	if c.Raft == nil {
		errs = append(errs, errors.New("Raft must be set"))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("DialTimeout %v must be positive", c.DialTimeout))
	}
	if _, err := parseVersion(c.ServerVersion); c.ServerVersion != "" && err != nil {
		errs = append(errs, fmt.Errorf("ServerVersion: %w", err))
	}
	if _, err := parseVersion(c.MinClusterVersion); c.MinClusterVersion != "" && err != nil {
		errs = append(errs, fmt.Errorf("MinClusterVersion: %w", err))
	}
	if len(c.LocalURLs) > 0 {
		if _, err := types.NewURLs(c.LocalURLs); err != nil {
			errs = append(errs, fmt.Errorf("LocalURLs %v: %w", c.LocalURLs, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rafthttp config: %w", err)
	}
	return nil
}

// peerURLsHeader is the X-PeerURLs value for urls: sorted, comma-joined,
// "" when there are none.
func peerURLsHeader(urls []string) string {
	if len(urls) == 0 {
		return ""
	}
	us, err := types.NewURLs(urls)
	if err != nil {
		return ""
	}
	return strings.Join(us.StringSlice(), ",")
}
