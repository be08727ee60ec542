package server

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Config is what the server needs to run one member. The launcher builds it
// from the operator's flags (internal/config); tests build it directly.
type Config struct {
	Logger *zap.Logger

	// Name is the member's human-readable name (--name).
	Name string
	// DataDir holds member/ (--data-dir). Required.
	DataDir string
	// WALDir, when set, holds the WAL instead of DataDir/member/wal.
	WALDir string

	// SnapshotCount is the number of applied entries between raft
	// snapshots (--snapshot-count, default 10000).
	SnapshotCount uint64
	// SnapshotCatchUpEntries is how many entries are kept in the raft log
	// after a snapshot for slow followers (default 5000).
	SnapshotCatchUpEntries uint64
	// MaxSnapFiles and MaxWALFiles bound retained files (0 = unlimited).
	MaxSnapFiles, MaxWALFiles uint

	// TickMs is --heartbeat-interval in milliseconds; ElectionTicks is
	// --election-timeout / --heartbeat-interval.
	TickMs        uint
	ElectionTicks int
	// InitialElectionTickAdvance fast-forwards the first election.
	InitialElectionTickAdvance bool
	// PreVote enables raft's pre-vote.
	PreVote bool

	// InitialCluster maps member names to their peer URLs; used only when
	// the data dir has no WAL yet.
	InitialCluster map[string][]string
	// InitialClusterToken seeds member IDs at bootstrap.
	InitialClusterToken string
	// NewCluster is true for --initial-cluster-state new.
	NewCluster bool
	// Discovery, when set, finds the members of a new cluster (no WAL,
	// NewCluster): InitialCluster then holds only this member, whose ID
	// (from PeerURLs and InitialClusterToken, which is the discovery token
	// or URL) is registered with the discovery service, and the cluster is
	// what Discovery returns. A restart ignores it with etcd's warning.
	Discovery Discoverer
	// DiscoveryURL is --discovery (v2), which etcd refuses when joining an
	// existing cluster (NewCluster false).
	DiscoveryURL string
	// PeerURLs are this member's advertised peer URLs.
	PeerURLs []string
	// PeerTLS is the client TLS configuration for https peer URLs (nil:
	// plain http peers).
	PeerTLS *tls.Config
	// ClientURLs are this member's advertised client URLs.
	ClientURLs []string

	// InitialCorruptCheck compares this member's HashKV with its peers'
	// before it serves clients (feature gate InitialCorruptCheck).
	InitialCorruptCheck bool
	// CorruptCheckTime is the period of the leader's corruption check
	// (--corrupt-check-time); 0 disables it.
	CorruptCheckTime time.Duration
	// CompactHashCheck enables the leader's comparison of the hashes
	// members compute at compactions, every CompactHashCheckTime (feature
	// gate CompactHashCheck, --compact-hash-check-time).
	CompactHashCheck     bool
	CompactHashCheckTime time.Duration

	// LeaseCheckpoint makes the leader checkpoint the remaining TTL of
	// long leases through raft every LeaseCheckpointInterval (0: 5 min), so
	// a new leader does not restart them from their full TTL (feature gate
	// LeaseCheckpoint; etcd 3.6 has no flag for the interval).
	// LeaseCheckpointPersist writes checkpoints to the backend even before
	// the cluster version is 3.6 (gate LeaseCheckpointPersist).
	LeaseCheckpoint         bool
	LeaseCheckpointPersist  bool
	LeaseCheckpointInterval time.Duration

	// QuotaBackendBytes is --quota-backend-bytes (0 → 2 GiB, < 0 → none).
	QuotaBackendBytes int64
	// BackendBatchInterval and BackendBatchLimit bound the backend's
	// commit batches (0 → 100ms / 10000).
	BackendBatchInterval time.Duration
	BackendBatchLimit    int
	// BackendFreelistType is "map" or "array".
	BackendFreelistType string

	// MaxTxnOps is --max-txn-ops; MaxRequestBytes is --max-request-bytes.
	MaxTxnOps       uint
	MaxRequestBytes uint

	// CompactionBatchLimit and CompactionSleepInterval pace physical
	// compaction.
	CompactionBatchLimit    int
	CompactionSleepInterval time.Duration

	// AutoCompactionMode is --auto-compaction-mode: "periodic" or
	// "revision" (compactor.ModePeriodic, compactor.ModeRevision); read
	// only when AutoCompactionRetention is not 0.
	AutoCompactionMode string
	// AutoCompactionRetention is --auto-compaction-retention as parsed by
	// compactor.ParseRetention; 0 (the default) disables auto compaction.
	// In periodic mode it is the duration of history kept (at least 10ns;
	// a shorter or negative one disables auto compaction with a warning):
	// every min(retention, 1h) the leader compacts to the revision observed
	// retention ago. In revision mode its nanosecond count is the number
	// of revisions kept: every 5 minutes the leader compacts to the current
	// revision minus that count.
	AutoCompactionRetention time.Duration

	// StrictReconfigCheck refuses member changes that could cost the
	// cluster its quorum (--strict-reconfig-check, etcd's default true):
	// see checkAdd, checkRemove and checkPromote. The zero value turns the
	// checks off, so the launcher must set it.
	StrictReconfigCheck bool
	// MaxLearners is the most learner members a conf change may leave in
	// the cluster (--max-learners; 0 means etcd's default, 1).
	MaxLearners int

	// ForceNewCluster restarts an existing member as the only member of its
	// cluster (--force-new-cluster; needs a WAL, ignored without one).
	ForceNewCluster bool

	// WatchProgressNotifyInterval is the period of watch progress
	// notifications (--watch-progress-notify-interval; 0 → etcd's 10m,
	// below 100ms → 100ms).
	WatchProgressNotifyInterval time.Duration

	// UnsafeNoFsync disables fsync (--unsafe-no-fsync): data loss on crash.
	UnsafeNoFsync bool

	// Registerer receives the server's metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// DefaultQuotaBytes is the backend quota when --quota-backend-bytes is 0.
const DefaultQuotaBytes = int64(2 * 1024 * 1024 * 1024)

// MemberDir is DataDir/member.
func (c *Config) MemberDir() string { return filepath.Join(c.DataDir, "member") }

// SnapDir is DataDir/member/snap.
func (c *Config) SnapDir() string { return filepath.Join(c.MemberDir(), "snap") }

// BackendPath is DataDir/member/snap/db.
func (c *Config) BackendPath() string { return filepath.Join(c.SnapDir(), "db") }

// WALPath is the WAL directory in use.
func (c *Config) WALPath() string {
	if c.WALDir != "" {
		return c.WALDir
	}
	return filepath.Join(c.MemberDir(), "wal")
}

// TickInterval is one raft tick.
func (c *Config) TickInterval() time.Duration { return time.Duration(c.TickMs) * time.Millisecond }

// ElectionTimeout is the election timeout as a duration.
func (c *Config) ElectionTimeout() time.Duration {
	return time.Duration(c.ElectionTicks) * c.TickInterval()
}

// RequestTimeout bounds a proposal's wait, as etcd: 5s + 2 × election.
func (c *Config) RequestTimeout() time.Duration { return 5*time.Second + 2*c.ElectionTimeout() }

// maxLearners is MaxLearners with etcd's default applied.
func (c *Config) maxLearners() int {
	if c.MaxLearners <= 0 {
		return 1
	}
	return c.MaxLearners
}

// Quota returns the effective backend quota in bytes (0: none).
func (c *Config) Quota() int64 {
	switch {
	case c.QuotaBackendBytes == 0:
		return DefaultQuotaBytes
	case c.QuotaBackendBytes < 0:
		return 0
	}
	return c.QuotaBackendBytes
}

// validate checks what the server relies on; flag-level validation is done
// by internal/config before the server is built.
func (c *Config) validate() error {
	switch {
	case c.Logger == nil:
		return fmt.Errorf("server config: no logger")
	case c.DataDir == "":
		return fmt.Errorf("server config: empty data dir")
	case c.TickMs == 0 || c.ElectionTicks <= 1:
		return fmt.Errorf("server config: bad raft timing (tick %dms, election %d ticks)", c.TickMs, c.ElectionTicks)
	case c.SnapshotCount == 0:
		return fmt.Errorf("server config: snapshot count must be > 0")
	}
	return nil
}
