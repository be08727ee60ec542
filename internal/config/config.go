// Package config holds the cairn server's configuration: the Config struct,
// its etcd 3.6.16 defaults, the command-line flags derived from it, the
// ETCD_* environment variables, the YAML config file and a pure Validate.
//
// The behaviour (flag syntax, precedence, error texts and their order) is
// etcd 3.6.16's, described in the project spec, sections A.1-A.5. Load is the
// entry point used by cmd/cairn; it reports the exit status etcd would use
// through *ExitError.
package config

import (
	"net/url"
	"time"

	"go.uber.org/zap"
)

// Version strings printed by --version.
const (
	// EtcdVersion is the etcd release cairn is compatible with.
	EtcdVersion = "3.6.16"
	// CairnVersion is cairn's own release.
	CairnVersion = "0.1.0"
)

// Config is the full server configuration. Every etcd 3.6.16 server flag has a
// field here; the flag table in flags.go binds each flag name to its field.
// Fields hold the values as given: a zero that etcd interprets ("0 means the
// built-in default") stays zero, and the Effective* methods resolve it.
//
// JSON tags are the YAML config-file keys (A.3); "-" marks settings that have
// no top-level key (they are read through nested keys or not at all).
type Config struct {
	// ---- Member ----

	// Name is the human-readable member name (--name, default "default").
	// Keeping the default logs a warning; initial-cluster is regenerated from
	// it when only the name is changed.
	Name string `json:"name"`
	// DataDir is the data directory (--data-dir). Empty means "<name>.etcd" in
	// the working directory; Load fills that in after validation.
	DataDir string `json:"data-dir"`
	// WALDir is a dedicated WAL directory (--wal-dir); empty means
	// <data-dir>/member/wal.
	WALDir string `json:"wal-dir"`
	// SnapshotCount is the number of applied entries between raft snapshots to
	// disk (--snapshot-count, default 10000).
	SnapshotCount uint64 `json:"snapshot-count"`
	// HeartbeatMs is the raft tick in milliseconds (--heartbeat-interval,
	// default 100, must be >0, and 5*HeartbeatMs <= ElectionMs).
	HeartbeatMs uint `json:"heartbeat-interval"`
	// ElectionMs is the election timeout in milliseconds (--election-timeout,
	// default 1000, range 5*HeartbeatMs..50000). Election ticks are
	// ElectionMs/HeartbeatMs.
	ElectionMs uint `json:"election-timeout"`
	// InitialElectionTickAdvance fast-forwards election ticks on boot
	// (--initial-election-tick-advance, default true).
	InitialElectionTickAdvance bool `json:"initial-election-tick-advance"`
	// ListenPeerURLs are the peer listeners (--listen-peer-urls, default
	// http://localhost:2380). Hosts must be IP literals or localhost.
	ListenPeerURLs []url.URL `json:"-"`
	// ListenClientURLs are the client listeners, gRPC and (unless
	// ListenClientHTTPURLs is set) HTTP (--listen-client-urls, default
	// http://localhost:2379). Setting it on the command line or environment
	// without --advertise-client-urls is an error.
	ListenClientURLs []url.URL `json:"-"`
	// ListenClientHTTPURLs are HTTP-only client listeners
	// (--listen-client-http-urls, default none).
	ListenClientHTTPURLs []url.URL `json:"-"`
	// MaxSnapshots is the number of .snap files kept, 0 = unlimited
	// (--max-snapshots, default 5; deprecated, warns when set).
	MaxSnapshots uint `json:"max-snapshots"`
	// MaxWALs is the number of WAL files kept, 0 = unlimited (--max-wals,
	// default 5).
	MaxWALs uint `json:"max-wals"`
	// MemoryMlock locks the process memory in RAM (--memory-mlock, default
	// false; alias --experimental-memory-mlock).
	MemoryMlock bool `json:"memory-mlock"`
	// QuotaBackendBytes is the backend size alarm threshold in bytes
	// (--quota-backend-bytes, default 0 = 2 GiB; <0 = no quota; >8 GiB warns).
	QuotaBackendBytes int64 `json:"quota-backend-bytes"`
	// BackendFreelistType is the bbolt freelist type (--backend-bbolt-freelist-type,
	// default "" = map; "array" selects the array freelist, anything else map).
	BackendFreelistType string `json:"backend-bbolt-freelist-type"`
	// BackendBatchInterval is the longest time before a backend commit
	// (--backend-batch-interval, default 0 = 100ms).
	BackendBatchInterval time.Duration `json:"backend-batch-interval"`
	// BackendBatchLimit is the most operations before a backend commit
	// (--backend-batch-limit, default 0 = 10000).
	BackendBatchLimit int `json:"backend-batch-limit"`
	// MaxTxnOps is the most operations in one transaction (--max-txn-ops,
	// default 128).
	MaxTxnOps uint `json:"max-txn-ops"`
	// MaxRequestBytes is the largest client request in bytes
	// (--max-request-bytes, default 1572864; gRPC receive limit is this plus
	// 512 KiB; above 10 MiB warns).
	MaxRequestBytes uint `json:"max-request-bytes"`
	// MaxConcurrentStreams is the per-client gRPC stream limit
	// (--max-concurrent-streams, default 4294967295).
	MaxConcurrentStreams uint32 `json:"max-concurrent-streams"`
	// GRPCKeepAliveMinTime is the shortest client ping interval allowed
	// (--grpc-keepalive-min-time, default 5s).
	GRPCKeepAliveMinTime time.Duration `json:"grpc-keepalive-min-time"`
	// GRPCKeepAliveInterval is the server-to-client ping interval, 0 disables
	// (--grpc-keepalive-interval, default 2h).
	GRPCKeepAliveInterval time.Duration `json:"grpc-keepalive-interval"`
	// GRPCKeepAliveTimeout is the wait for a ping answer, 0 disables
	// (--grpc-keepalive-timeout, default 20s).
	GRPCKeepAliveTimeout time.Duration `json:"grpc-keepalive-timeout"`
	// SocketOpts are listener socket options (--socket-reuse-port,
	// --socket-reuse-address, default false; YAML key socket-options).
	SocketOpts SocketOpts `json:"socket-options"`
	// EnableGRPCGateway serves the JSON gateway under /v3/
	// (--enable-grpc-gateway, default true).
	EnableGRPCGateway bool `json:"enable-grpc-gateway"`
	// RaftReadTimeout and RaftWriteTimeout bound each peer connection read and
	// write (--raft-read-timeout, --raft-write-timeout, default 5s; smaller
	// values are raised to 5s by Load). No config-file key.
	RaftReadTimeout  time.Duration `json:"-"`
	RaftWriteTimeout time.Duration `json:"-"`
	// FeatureGates holds the gates set by --feature-gates and the former
	// experimental bool flags; see Enabled. YAML key feature-gates is a
	// string "A=true,B=false".
	FeatureGates FeatureGates `json:"-"`

	// ---- Clustering ----

	// InitialAdvertisePeerURLs are this member's advertised peer URLs
	// (--initial-advertise-peer-urls, default http://localhost:2380); hosts
	// must be non-empty.
	InitialAdvertisePeerURLs []url.URL `json:"-"`
	// InitialCluster is the bootstrap member list "name=url,..."
	// (--initial-cluster, default "default=http://localhost:2380"). Load
	// regenerates it from Name when only the name changed, and clears it when
	// a discovery method is set and it was not.
	InitialCluster string `json:"initial-cluster"`
	// InitialClusterState is "new" or "existing" (--initial-cluster-state,
	// default new; ignored once the data dir is initialized).
	InitialClusterState string `json:"initial-cluster-state"`
	// InitialClusterToken is mixed into member and cluster IDs
	// (--initial-cluster-token, default etcd-cluster).
	InitialClusterToken string `json:"initial-cluster-token"`
	// AdvertiseClientURLs are this member's advertised client URLs
	// (--advertise-client-urls, default http://localhost:2379). Required
	// when --listen-client-urls is given on the command line or environment.
	AdvertiseClientURLs []url.URL `json:"-"`
	// Discovery is the v2 discovery URL (--discovery). Exclusive with the
	// other bootstrap methods.
	Discovery string `json:"discovery"`
	// DiscoveryCfg is the v3 discovery setting (--discovery-token,
	// --discovery-endpoints and the --discovery-* client flags; YAML key
	// discovery-config).
	DiscoveryCfg DiscoveryConfig `json:"discovery-config"`
	// DiscoveryFallback is "exit" or "proxy" (--discovery-fallback, default
	// exit; "proxy" is rejected). No config-file key.
	DiscoveryFallback string `json:"-"`
	// DiscoveryProxy is the HTTP proxy for v2 discovery (--discovery-proxy).
	DiscoveryProxy string `json:"discovery-proxy"`
	// DiscoverySRV is the DNS SRV domain for bootstrap (--discovery-srv).
	DiscoverySRV string `json:"discovery-srv"`
	// DiscoverySRVName is the SRV name suffix (--discovery-srv-name).
	DiscoverySRVName string `json:"discovery-srv-name"`
	// StrictReconfigCheck rejects reconfigurations that would lose quorum
	// (--strict-reconfig-check, default true).
	StrictReconfigCheck bool `json:"strict-reconfig-check"`
	// PreVote enables raft pre-vote (--pre-vote, default true).
	PreVote bool `json:"pre-vote"`
	// AutoCompactionRetention is "0" (off), an integer (hours in periodic
	// mode, revisions in revision mode) or a Go duration
	// (--auto-compaction-retention, default "0"); parsed by the server.
	AutoCompactionRetention string `json:"auto-compaction-retention"`
	// AutoCompactionMode is "periodic" or "revision" (--auto-compaction-mode,
	// default periodic).
	AutoCompactionMode string `json:"auto-compaction-mode"`
	// MaxLearners is the most learner members (--max-learners, default 1).
	MaxLearners int `json:"max-learners"`
	// V2Deprecation is the v2store deprecation stage (--v2-deprecation,
	// default write-only; deprecated, warns when set). Only
	// write-only-skip-check has an effect: Load replaces any other value by
	// write-only.
	V2Deprecation string `json:"v2-deprecation"`
	// EnableV2 serves the v2 HTTP API (--enable-v2, default true). cairn's
	// own extension: etcd 3.6 rejects this flag.
	EnableV2 bool `json:"enable-v2"`

	// ---- Security ----

	// ClientTLS is the client listener TLS (--cert-file, --key-file,
	// --client-cert-auth, --trusted-ca-file, --client-cert-file,
	// --client-key-file, --client-crl-file, --client-cert-allowed-hostname;
	// YAML key client-transport-security).
	ClientTLS TLSInfo `json:"-"`
	// ClientAutoTLS generates client certificates under
	// <data-dir>/fixtures/client (--auto-tls, default false).
	ClientAutoTLS bool `json:"-"`
	// PeerTLS is the peer listener TLS (--peer-* flags; YAML key
	// peer-transport-security).
	PeerTLS TLSInfo `json:"-"`
	// PeerAutoTLS generates peer certificates under <data-dir>/fixtures/peer
	// (--peer-auto-tls, default false).
	PeerAutoTLS bool `json:"-"`
	// SelfSignedCertValidity is the auto-TLS certificate lifetime in years
	// (--self-signed-cert-validity, default 1; 0 in a config file means 1).
	SelfSignedCertValidity uint `json:"self-signed-cert-validity"`
	// CipherSuites lists TLS cipher suites, empty = Go's (--cipher-suites);
	// not allowed with TLS1.3 as minimum.
	CipherSuites []string `json:"cipher-suites"`
	// CORS is the set of allowed origins, "*" = all (--cors, default *).
	// Sorted, unique.
	CORS []string `json:"-"`
	// HostWhitelist is the set of accepted Host headers for insecure HTTP,
	// "*" = all (--host-whitelist, default *). Sorted, unique.
	HostWhitelist []string `json:"-"`
	// TLSMinVersion is "TLS1.2" or "TLS1.3" (--tls-min-version, default TLS1.2).
	TLSMinVersion string `json:"tls-min-version"`
	// TLSMaxVersion is "", "TLS1.2" or "TLS1.3" (--tls-max-version, default ""
	// = Go's); must not be below TLSMinVersion.
	TLSMaxVersion string `json:"tls-max-version"`

	// ---- Auth ----

	// AuthToken is "simple" or "jwt,<options>" (--auth-token, default simple).
	AuthToken string `json:"auth-token"`
	// BcryptCost is the password hash cost, 4..31 (--bcrypt-cost, default 10;
	// out of range means 10 with a warning, by the server).
	BcryptCost uint `json:"bcrypt-cost"`
	// AuthTokenTTL is the simple token lifetime in seconds (--auth-token-ttl,
	// default 300).
	AuthTokenTTL uint `json:"auth-token-ttl"`

	// ---- Profiling and monitoring ----

	// EnablePprof serves /debug/pprof (--enable-pprof, default false).
	EnablePprof bool `json:"enable-pprof"`
	// Metrics is "basic" or "extensive" (--metrics, default basic).
	Metrics string `json:"metrics"`
	// ListenMetricsURLs serve /metrics and health (--listen-metrics-urls).
	ListenMetricsURLs []url.URL `json:"-"`

	// ---- Logging ----

	// Logger must be "zap" (--logger, default zap).
	Logger string `json:"logger"`
	// LogOutputs are "default", "stderr", "stdout", "systemd/journal" or file
	// paths (--log-outputs, default [default]; "default" cannot be combined).
	// Sorted, unique when given as a flag.
	LogOutputs []string `json:"log-outputs"`
	// LogLevel is debug, info, warn, error, dpanic, panic or fatal
	// (--log-level, default info).
	LogLevel string `json:"log-level"`
	// LogFormat is "json" or "console" (--log-format, default json).
	LogFormat string `json:"log-format"`
	// EnableLogRotation rotates a single file output (--enable-log-rotation).
	EnableLogRotation bool `json:"enable-log-rotation"`
	// LogRotationConfigJSON is the lumberjack settings
	// (--log-rotation-config-json).
	LogRotationConfigJSON string `json:"log-rotation-config-json"`
	// WarningUnaryRequestDuration is the slow unary request threshold
	// (--warning-unary-request-duration, default 0 = 300ms; see
	// EffectiveWarningUnaryRequestDuration).
	WarningUnaryRequestDuration time.Duration `json:"warning-unary-request-duration"`
	// ExperimentalWarningUnaryRequestDuration is the old form of
	// WarningUnaryRequestDuration; both non-zero is an error.
	ExperimentalWarningUnaryRequestDuration time.Duration `json:"experimental-warning-unary-request-duration"`

	// ---- Distributed tracing ----

	// EnableDistributedTracing turns on OpenTelemetry tracing
	// (--enable-distributed-tracing, default false).
	EnableDistributedTracing bool `json:"enable-distributed-tracing"`
	// DistributedTracingAddress is the collector (default localhost:4317).
	DistributedTracingAddress string `json:"distributed-tracing-address"`
	// DistributedTracingServiceName is the service name (default etcd).
	DistributedTracingServiceName string `json:"distributed-tracing-service-name"`
	// DistributedTracingInstanceID is this member's instance ID (default "").
	DistributedTracingInstanceID string `json:"distributed-tracing-instance-id"`
	// DistributedTracingSamplingRate is samples per million spans, 0..1000000
	// (default 0).
	DistributedTracingSamplingRate int `json:"distributed-tracing-sampling-rate"`
	// Experimental* tracing fields are the old --experimental-* forms; Load
	// copies each explicitly set one into its new field.
	ExperimentalEnableDistributedTracing       bool   `json:"experimental-enable-distributed-tracing"`
	ExperimentalDistributedTracingAddress      string `json:"experimental-distributed-tracing-address"`
	ExperimentalDistributedTracingServiceName  string `json:"experimental-distributed-tracing-service-name"`
	ExperimentalDistributedTracingInstanceID   string `json:"experimental-distributed-tracing-instance-id"`
	ExperimentalDistributedTracingSamplingRate int    `json:"experimental-distributed-tracing-sampling-rate"`

	// ---- Former experimental flags (new name, then the old alias) ----

	// CorruptCheckTime is the period of cluster corruption checks, 0 = off
	// (--corrupt-check-time).
	CorruptCheckTime             time.Duration `json:"corrupt-check-time"`
	ExperimentalCorruptCheckTime time.Duration `json:"experimental-corrupt-check-time"`
	// CompactHashCheckTime is the period of leader compaction-hash checks, >0
	// (--compact-hash-check-time, default 1m).
	CompactHashCheckTime             time.Duration `json:"compact-hash-check-time"`
	ExperimentalCompactHashCheckTime time.Duration `json:"experimental-compact-hash-check-time"`
	// CompactionBatchLimit is the revisions deleted per compaction batch
	// (--compaction-batch-limit, default 0 = 1000).
	CompactionBatchLimit             int `json:"compaction-batch-limit"`
	ExperimentalCompactionBatchLimit int `json:"experimental-compaction-batch-limit"`
	// CompactionSleepInterval is the pause between compaction batches
	// (--compaction-sleep-interval, default 0 = 10ms).
	CompactionSleepInterval             time.Duration `json:"compaction-sleep-interval"`
	ExperimentalCompactionSleepInterval time.Duration `json:"experimental-compaction-sleep-interval"`
	// WatchProgressNotifyInterval is the period of watch progress
	// notifications (--watch-progress-notify-interval, default 0 = 10m; below
	// 100ms means 100ms).
	WatchProgressNotifyInterval             time.Duration `json:"watch-progress-notify-interval"`
	ExperimentalWatchProgressNotifyInterval time.Duration `json:"experimental-watch-progress-notify-interval"`
	// WarningApplyDuration is the slow apply threshold
	// (--warning-apply-duration, default 100ms).
	WarningApplyDuration             time.Duration `json:"warning-apply-duration"`
	ExperimentalWarningApplyDuration time.Duration `json:"experimental-warning-apply-duration"`
	// BootstrapDefragThresholdMegabytes defragments at boot when at least
	// this much would be freed, 0 = never (--bootstrap-defrag-threshold-megabytes).
	BootstrapDefragThresholdMegabytes             uint `json:"bootstrap-defrag-threshold-megabytes"`
	ExperimentalBootstrapDefragThresholdMegabytes uint `json:"experimental-bootstrap-defrag-threshold-megabytes"`
	// ExperimentalMemoryMlock is the old form of MemoryMlock.
	ExperimentalMemoryMlock bool `json:"experimental-memory-mlock"`
	// SnapshotCatchUpEntries is the raft entries kept after a snapshot for
	// slow followers (--snapshot-catchup-entries, default 5000). etcd's YAML
	// key for the old form is misspelt experimental-snapshot-catch-up-entries.
	SnapshotCatchUpEntries             uint64 `json:"snapshot-catchup-entries"`
	ExperimentalSnapshotCatchUpEntries uint64 `json:"experimental-snapshot-catch-up-entries"`
	// DowngradeCheckTime is the period of downgrade status checks
	// (--downgrade-check-time, default 5s).
	DowngradeCheckTime             time.Duration `json:"downgrade-check-time"`
	ExperimentalDowngradeCheckTime time.Duration `json:"experimental-downgrade-check-time"`
	// ExperimentalPeerSkipClientSANVerification is the old form of
	// PeerTLS.SkipClientSANVerify.
	ExperimentalPeerSkipClientSANVerification bool `json:"experimental-peer-skip-client-san-verification"`
	// The bools below became feature gates; setting one sets its gate (see
	// GateOfExperimentalFlag). Naming the gate in --feature-gates as well is
	// an error.
	ExperimentalInitialCorruptCheck          bool `json:"experimental-initial-corrupt-check"`
	ExperimentalCompactHashCheckEnabled      bool `json:"experimental-compact-hash-check-enabled"`
	ExperimentalEnableLeaseCheckpoint        bool `json:"experimental-enable-lease-checkpoint"`
	ExperimentalEnableLeaseCheckpointPersist bool `json:"experimental-enable-lease-checkpoint-persist"`
	ExperimentalTxnModeWriteWithSharedBuffer bool `json:"experimental-txn-mode-write-with-shared-buffer"`
	ExperimentalStopGRPCServiceOnDefrag      bool `json:"experimental-stop-grpc-service-on-defrag"`

	// ---- Unsafe ----

	// ForceNewCluster rewrites membership to this one member
	// (--force-new-cluster, default false).
	ForceNewCluster bool `json:"force-new-cluster"`
	// UnsafeNoFsync disables fsync (--unsafe-no-fsync, default false).
	UnsafeNoFsync bool `json:"unsafe-no-fsync"`

	// ---- Other ----

	// ConfigFile is the YAML file read instead of flags and environment
	// (--config-file or ETCD_CONFIG_FILE).
	ConfigFile string `json:"-"`
	// IgnoredLegacy lists the legacy flags (cluster-active-size, ..., v, vv)
	// that were given; they have no effect.
	IgnoredLegacy []string `json:"-"`

	// explicit records flags set by command line, environment or file.
	explicit map[string]bool
	// logger is the logger Load built during validation (nil otherwise).
	logger *zap.Logger
	// parseLogs are the records Load collected (see ParseLogs).
	parseLogs []LogRecord
	// gatesText is the feature-gates text the experimental-flag clash check
	// searches: the parsed gates for flags, the raw string for a file.
	gatesText string
}

// SocketOpts are listener socket options.
type SocketOpts struct {
	// ReusePort sets SO_REUSEPORT (--socket-reuse-port).
	ReusePort bool `json:"reuse-port"`
	// ReuseAddress sets SO_REUSEADDR (--socket-reuse-address).
	ReuseAddress bool `json:"reuse-address"`
}

// TLSInfo is one listener's TLS setting. All fields default to empty/false.
type TLSInfo struct {
	CertFile       string // server certificate (--cert-file / --peer-cert-file)
	KeyFile        string // server key (--key-file / --peer-key-file)
	ClientCertFile string // client certificate for outgoing connections (--[peer-]client-cert-file)
	ClientKeyFile  string // client key for outgoing connections (--[peer-]client-key-file)
	ClientCertAuth bool   // require client certificates (--[peer-]client-cert-auth)
	TrustedCAFile  string // CA bundle (--trusted-ca-file / --peer-trusted-ca-file)
	CRLFile        string // revocation list (--client-crl-file / --peer-crl-file); no YAML key
	// AllowedCNs are the accepted client certificate CNs (--peer-cert-allowed-cn;
	// client side only through YAML allowed-cn).
	AllowedCNs []string
	// AllowedHostnames are the accepted client certificate SAN hostnames
	// (--client-cert-allowed-hostname / --peer-cert-allowed-hostname).
	AllowedHostnames []string
	// SkipClientSANVerify skips client SAN checks
	// (--peer-skip-client-san-verification; peer only).
	SkipClientSANVerify bool
}

// DiscoveryConfig is v3 discovery: the discovery service is an etcd cluster.
// --discovery-token and --discovery-endpoints need each other.
type DiscoveryConfig struct {
	// Client is the discovery client setting (YAML key "client").
	Client DiscoveryClient `json:"client"`
	// Token is the discovery token (--discovery-token).
	Token string `json:"token"`
}

// DiscoveryClient is the client used for v3 discovery.
type DiscoveryClient struct {
	Endpoints          []string        `json:"endpoints"`         // --discovery-endpoints, sorted unique
	RequestTimeout     time.Duration   `json:"request-timeout"`   // --discovery-request-timeout, default 5s
	DialTimeout        time.Duration   `json:"dial-timeout"`      // --discovery-dial-timeout, default 2s
	KeepAliveTime      time.Duration   `json:"keepalive-time"`    // --discovery-keepalive-time, default 2s
	KeepAliveTimeout   time.Duration   `json:"keepalive-timeout"` // --discovery-keepalive-timeout, default 6s
	MaxCallSendMsgSize int             `json:"max-request-bytes"` // YAML only
	MaxCallRecvMsgSize int             `json:"max-recv-bytes"`    // YAML only
	Secure             DiscoverySecure `json:"secure"`
	Auth               DiscoveryAuth   `json:"auth"`
}

// DiscoverySecure is the discovery client's TLS.
type DiscoverySecure struct {
	Cert               string `json:"cert"`                     // --discovery-cert
	Key                string `json:"key"`                      // --discovery-key
	Cacert             string `json:"cacert"`                   // --discovery-cacert
	ServerName         string `json:"server-name"`              // YAML only
	InsecureTransport  bool   `json:"insecure-transport"`       // --discovery-insecure-transport, default true
	InsecureSkipVerify bool   `json:"insecure-skip-tls-verify"` // --discovery-insecure-skip-tls-verify
}

// DiscoveryAuth is the discovery client's credentials.
type DiscoveryAuth struct {
	Username string `json:"username"` // --discovery-user (user[:password])
	Password string `json:"password"` // --discovery-password
}

// Defaults that differ from the Go zero value, and the values etcd uses when
// a field is left at zero.
const (
	DefaultName                        = "default"
	DefaultListenPeerURL               = "http://localhost:2380"
	DefaultListenClientURL             = "http://localhost:2379"
	DefaultInitialClusterToken         = "etcd-cluster"
	DefaultSnapshotCount               = 10000
	DefaultSnapshotCatchUpEntries      = 5000
	DefaultMaxSnapshots                = 5
	DefaultMaxWALs                     = 5
	DefaultMaxTxnOps                   = 128
	DefaultMaxRequestBytes             = 1572864
	DefaultMaxConcurrentStreams        = 4294967295
	DefaultWarningApplyDuration        = 100 * time.Millisecond
	DefaultWarningUnaryRequestDuration = 300 * time.Millisecond
	DefaultRaftTimeout                 = 5 * time.Second
	DefaultCompactHashCheckTime        = time.Minute
	DefaultDowngradeCheckTime          = 5 * time.Second
	DefaultLogRotationConfig           = `{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}`
	// MaxElectionMs is the largest accepted --election-timeout.
	MaxElectionMs = 50000
)

// Default returns the etcd 3.6.16 defaults plus cairn's --enable-v2=true.
func Default() *Config {
	lpurl, _ := url.Parse(DefaultListenPeerURL)
	lcurl, _ := url.Parse(DefaultListenClientURL)
	return &Config{
		Name:                       DefaultName,
		SnapshotCount:              DefaultSnapshotCount,
		HeartbeatMs:                100,
		ElectionMs:                 1000,
		InitialElectionTickAdvance: true,
		ListenPeerURLs:             []url.URL{*lpurl},
		ListenClientURLs:           []url.URL{*lcurl},
		MaxSnapshots:               DefaultMaxSnapshots,
		MaxWALs:                    DefaultMaxWALs,
		MaxTxnOps:                  DefaultMaxTxnOps,
		MaxRequestBytes:            DefaultMaxRequestBytes,
		MaxConcurrentStreams:       DefaultMaxConcurrentStreams,
		GRPCKeepAliveMinTime:       5 * time.Second,
		GRPCKeepAliveInterval:      2 * time.Hour,
		GRPCKeepAliveTimeout:       20 * time.Second,
		EnableGRPCGateway:          true,
		RaftReadTimeout:            DefaultRaftTimeout,
		RaftWriteTimeout:           DefaultRaftTimeout,

		InitialAdvertisePeerURLs: []url.URL{*lpurl},
		InitialCluster:           DefaultName + "=" + DefaultListenPeerURL,
		InitialClusterState:      ClusterStateNew,
		InitialClusterToken:      DefaultInitialClusterToken,
		AdvertiseClientURLs:      []url.URL{*lcurl},
		DiscoveryCfg: DiscoveryConfig{Client: DiscoveryClient{
			RequestTimeout:   5 * time.Second,
			DialTimeout:      2 * time.Second,
			KeepAliveTime:    2 * time.Second,
			KeepAliveTimeout: 6 * time.Second,
			Secure:           DiscoverySecure{InsecureTransport: true},
		}},
		DiscoveryFallback:       "exit",
		StrictReconfigCheck:     true,
		PreVote:                 true,
		AutoCompactionRetention: "0",
		AutoCompactionMode:      CompactionModePeriodic,
		MaxLearners:             1,
		V2Deprecation:           V2DeprWriteOnly,
		EnableV2:                true,

		SelfSignedCertValidity: 1,
		CORS:                   []string{"*"},
		HostWhitelist:          []string{"*"},
		TLSMinVersion:          "TLS1.2",

		AuthToken:    "simple",
		BcryptCost:   10,
		AuthTokenTTL: 300,

		Metrics: "basic",

		Logger:                "zap",
		LogOutputs:            []string{LogOutputDefault},
		LogLevel:              "info",
		LogFormat:             "json",
		LogRotationConfigJSON: DefaultLogRotationConfig,

		DistributedTracingAddress:                 "localhost:4317",
		DistributedTracingServiceName:             "etcd",
		ExperimentalDistributedTracingAddress:     "localhost:4317",
		ExperimentalDistributedTracingServiceName: "etcd",

		CompactHashCheckTime:                     DefaultCompactHashCheckTime,
		ExperimentalCompactHashCheckTime:         DefaultCompactHashCheckTime,
		WarningApplyDuration:                     DefaultWarningApplyDuration,
		ExperimentalWarningApplyDuration:         DefaultWarningApplyDuration,
		SnapshotCatchUpEntries:                   DefaultSnapshotCatchUpEntries,
		ExperimentalSnapshotCatchUpEntries:       DefaultSnapshotCatchUpEntries,
		DowngradeCheckTime:                       DefaultDowngradeCheckTime,
		ExperimentalDowngradeCheckTime:           DefaultDowngradeCheckTime,
		ExperimentalTxnModeWriteWithSharedBuffer: true,
	}
}

// Enumerated values.
const (
	ClusterStateNew      = "new"
	ClusterStateExisting = "existing"

	CompactionModePeriodic = "periodic"
	CompactionModeRevision = "revision"

	V2DeprWriteOnly          = "write-only"
	V2DeprWriteOnlySkipCheck = "write-only-skip-check"
	V2DeprWriteOnlyDrop      = "write-only-drop-data"
	V2DeprGone               = "gone"

	LogOutputDefault = "default"
	LogOutputStderr  = "stderr"
	LogOutputStdout  = "stdout"
	LogOutputJournal = "systemd/journal"
)

// ExplicitlySet reports whether the flag called name (without dashes) was set
// by the command line, an ETCD_* variable or the config file. For a config
// file, the nested TLS keys count under their flag names.
func (c *Config) ExplicitlySet(name string) bool { return c.explicit[name] }

func (c *Config) setExplicit(name string) {
	if c.explicit == nil {
		c.explicit = map[string]bool{}
	}
	c.explicit[name] = true
}

// ElectionTicks is the election timeout in heartbeat ticks.
func (c *Config) ElectionTicks() int { return int(c.ElectionMs / c.HeartbeatMs) }

// IsNewCluster reports whether the member bootstraps a new cluster.
func (c *Config) IsNewCluster() bool { return c.InitialClusterState == ClusterStateNew }

// EffectiveWarningUnaryRequestDuration resolves the slow-request threshold:
// the new flag if set, else the experimental one, else 300ms.
func (c *Config) EffectiveWarningUnaryRequestDuration() time.Duration {
	switch {
	case c.WarningUnaryRequestDuration != 0:
		return c.WarningUnaryRequestDuration
	case c.ExperimentalWarningUnaryRequestDuration != 0:
		return c.ExperimentalWarningUnaryRequestDuration
	}
	return DefaultWarningUnaryRequestDuration
}
