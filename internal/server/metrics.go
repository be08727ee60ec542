package server

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus series, named as etcd names them so
// dashboards and alerts written for etcd work unchanged.
type metrics struct {
	hasLeader          prometheus.Gauge
	isLeader           prometheus.Gauge
	leaderChanges      prometheus.Counter
	proposalsCommitted prometheus.Gauge
	proposalsApplied   prometheus.Gauge
	proposalsPending   prometheus.Gauge
	proposalsFailed    prometheus.Counter
	walFsync           prometheus.Histogram
	backendCommit      prometheus.Histogram
	snapshotSave       prometheus.Histogram
	dbTotalSize        prometheus.GaugeFunc
	dbInUseSize        prometheus.GaugeFunc
	keysTotal          prometheus.GaugeFunc
	serverID           *prometheus.GaugeVec
	serverVersion      *prometheus.GaugeVec
	clusterVersion     *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, dbSize, dbInUse, keys func() float64) *metrics {
	m := &metrics{
		hasLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "has_leader",
			Help: "Whether or not a leader exists. 1 is existence, 0 is not."}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "is_leader",
			Help: "Whether or not this member is a leader. 1 if is, 0 otherwise."}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "leader_changes_seen_total",
			Help: "The number of leader changes seen."}),
		proposalsCommitted: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_committed_total",
			Help: "The total number of consensus proposals committed."}),
		proposalsApplied: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_applied_total",
			Help: "The total number of consensus proposals applied."}),
		proposalsPending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_pending",
			Help: "The current number of pending proposals to commit."}),
		proposalsFailed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_failed_total",
			Help: "The total number of failed proposals seen."}),
		walFsync: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "disk", Name: "wal_fsync_duration_seconds",
			Help:    "The latency distributions of fsync called by WAL.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		backendCommit: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "disk", Name: "backend_commit_duration_seconds",
			Help:    "The latency distributions of commit called by backend.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		snapshotSave: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd_debugging", Subsystem: "snap", Name: "save_total_duration_seconds",
			Help:    "The total latency distributions of save called by snapshot.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		dbTotalSize: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "mvcc", Name: "db_total_size_in_bytes",
			Help: "Total size of the underlying database physically allocated in bytes."}, dbSize),
		dbInUseSize: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "mvcc", Name: "db_total_size_in_use_in_bytes",
			Help: "Total size of the underlying database logically in use in bytes."}, dbInUse),
		keysTotal: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "keys_total",
			Help: "Total number of keys."}, keys),
		serverID: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "id",
			Help: "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID."}, []string{"server_id"}),
		serverVersion: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "version",
			Help: "Which version is running. 1 for 'server_version' label with current version."}, []string{"server_version"}),
		clusterVersion: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "cluster", Name: "version",
			Help: "Which version is running. 1 for 'cluster_version' label with current cluster version"}, []string{"cluster_version"}),
	}
	if reg != nil {
		reg.MustRegister(m.hasLeader, m.isLeader, m.leaderChanges, m.proposalsCommitted, m.proposalsApplied,
			m.proposalsPending, m.proposalsFailed, m.walFsync, m.backendCommit, m.snapshotSave,
			m.dbTotalSize, m.dbInUseSize, m.keysTotal, m.serverID, m.serverVersion, m.clusterVersion)
	}
	return m
}
