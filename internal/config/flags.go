package config

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"
)

// Help groups, in --help order.
const (
	groupMember     = "Member"
	groupClustering = "Clustering"
	groupSecurity   = "Security"
	groupAuth       = "Auth"
	groupProfiling  = "Profiling and Monitoring"
	groupLogging    = "Logging"
	groupTracing    = "Experimental distributed tracing"
	groupExperiment = "Experimental feature"
	groupUnsafe     = "Unsafe feature"
	groupHidden     = "" // not listed by --help
)

// Value kinds needing more than the field's Go type to pick a flag.Value.
type kind int

const (
	kindPlain         kind = iota // decided by the field type
	kindStrings                   // []string, comma list as given
	kindUniqueStrings             // []string, sorted set
	kindCORS                      // []string, URL set or "*"
	kindClusterState              // new|existing
	kindFallback                  // exit|proxy
	kindV2Deprecation             // comma list of stages
)

// flagSpec is one row of the flag table: the single definition of a flag's
// name, field, help group and help text. The default is the field's value in
// Default().
type flagSpec struct {
	name  string
	group string
	// help is the --help description; each line is indented by four spaces.
	help string
	// show is what --help prints after the name: "" means the default value
	// in single quotes, "-" nothing, anything else is printed as is.
	show  string
	kind  kind
	field func(c *Config) any // pointer to the field
}

// deprecatedMsg gives the warning logged when a flag is explicitly set.
var deprecatedMsg = map[string]string{
	"max-snapshots":  "--max-snapshots is deprecated in 3.6 and will be decommissioned in 3.8.",
	"v2-deprecation": "--v2-deprecation is deprecated and scheduled for removal in v3.8. The default value is enforced, ignoring user input.",
}

// experimentalRenames maps each renamed --experimental-* flag to its new
// name, in the order conflicts are checked.
var experimentalRenames = [][2]string{
	{"experimental-compact-hash-check-time", "compact-hash-check-time"},
	{"experimental-corrupt-check-time", "corrupt-check-time"},
	{"experimental-compaction-batch-limit", "compaction-batch-limit"},
	{"experimental-watch-progress-notify-interval", "watch-progress-notify-interval"},
	{"experimental-warning-apply-duration", "warning-apply-duration"},
	{"experimental-bootstrap-defrag-threshold-megabytes", "bootstrap-defrag-threshold-megabytes"},
	{"experimental-memory-mlock", "memory-mlock"},
	{"experimental-snapshot-catchup-entries", "snapshot-catchup-entries"},
	{"experimental-compaction-sleep-interval", "compaction-sleep-interval"},
	{"experimental-downgrade-check-time", "downgrade-check-time"},
	{"experimental-peer-skip-client-san-verification", "peer-skip-client-san-verification"},
	{"experimental-enable-distributed-tracing", "enable-distributed-tracing"},
	{"experimental-distributed-tracing-address", "distributed-tracing-address"},
	{"experimental-distributed-tracing-service-name", "distributed-tracing-service-name"},
	{"experimental-distributed-tracing-instance-id", "distributed-tracing-instance-id"},
	{"experimental-distributed-tracing-sampling-rate", "distributed-tracing-sampling-rate"},
}

func init() {
	// The deprecation warnings of the renamed and gate-backed flags follow
	// one pattern; etcd's wording varies in "v3.6"/"3.6" and quoting.
	for _, r := range experimentalRenames {
		switch {
		case r[0] == "experimental-compact-hash-check-time":
			deprecatedMsg[r[0]] = fmt.Sprintf("--%s is deprecated in 3.6 and will be decommissioned in 3.7. Use '--%s' instead.", r[0], r[1])
		case r[0] == "experimental-compaction-sleep-interval":
			deprecatedMsg[r[0]] = fmt.Sprintf("--%s is deprecated in v3.6 and will be decommissioned in v3.7. Use '%s' instead.", r[0], r[1])
		case r[1] == "peer-skip-client-san-verification":
		case r[1] == "enable-distributed-tracing" || len(r[1]) > 19 && r[1][:19] == "distributed-tracing":
			deprecatedMsg[r[0]] = fmt.Sprintf("--%s is deprecated in 3.6 and will be decommissioned in 3.7. Use --%s instead.", r[0], r[1])
		default:
			deprecatedMsg[r[0]] = fmt.Sprintf("--%s is deprecated in v3.6 and will be decommissioned in v3.7. Use '--%s' instead.", r[0], r[1])
		}
	}
	deprecatedMsg["experimental-compact-hash-check-enabled"] = "--experimental-compact-hash-check-enabled is deprecated in 3.6 and will be decommissioned in 3.7. Use '--feature-gates=CompactHashCheck=true' instead."
	deprecatedMsg["experimental-txn-mode-write-with-shared-buffer"] = "--experimental-txn-mode-write-with-shared-buffer is deprecated in v3.6 and will be decommissioned in v3.7. Use '--feature-gates=TxnModeWriteWithSharedBuffer=true' instead."
}

// legacyIgnored are accepted and ignored (A.1); the test.* ones exist in
// etcd for coverage builds.
var legacyIgnored = []string{
	"cluster-active-size", "cluster-remove-delay", "cluster-sync-interval", "config", "force",
	"max-result-buffer", "max-retry-attempts", "peer-heartbeat-interval", "peer-election-timeout",
	"retry-interval", "snapshot", "v", "vv", "test.coverprofile", "test.outputdir",
}

func deprecatedExp(newName string) string {
	return " Deprecated in v3.6 and will be decommissioned in v3.7. Use '--" + newName + "' instead."
}

// flagTable lists every flag in --help order.
var flagTable = []flagSpec{
	// Member
	{name: "name", group: groupMember, help: "Human-readable name for this member.", field: func(c *Config) any { return &c.Name }},
	{name: "data-dir", group: groupMember, show: "'${name}.etcd'", help: "Path to the data directory.", field: func(c *Config) any { return &c.DataDir }},
	{name: "wal-dir", group: groupMember, help: "Path to the dedicated wal directory.", field: func(c *Config) any { return &c.WALDir }},
	{name: "snapshot-count", group: groupMember, help: "Number of committed transactions to trigger a snapshot.", field: func(c *Config) any { return &c.SnapshotCount }},
	{name: "heartbeat-interval", group: groupMember, help: "Time (in milliseconds) of a heartbeat interval.", field: func(c *Config) any { return &c.HeartbeatMs }},
	{name: "election-timeout", group: groupMember, help: "Time (in milliseconds) for an election to timeout. See tuning documentation for details.", field: func(c *Config) any { return &c.ElectionMs }},
	{name: "initial-election-tick-advance", group: groupMember, help: "Whether to fast-forward initial election ticks on boot for faster election.", field: func(c *Config) any { return &c.InitialElectionTickAdvance }},
	{name: "listen-peer-urls", group: groupMember, help: "List of URLs to listen on for peer traffic.", field: func(c *Config) any { return &c.ListenPeerURLs }},
	{name: "listen-client-urls", group: groupMember, help: "List of URLs to listen on for client grpc traffic and http as long as --listen-client-http-urls is not specified.", field: func(c *Config) any { return &c.ListenClientURLs }},
	{name: "listen-client-http-urls", group: groupMember, help: "List of URLs to listen on for http only client traffic. Enabling this flag removes http services from --listen-client-urls.", field: func(c *Config) any { return &c.ListenClientHTTPURLs }},
	{name: "max-snapshots", group: groupMember, help: "Maximum number of snapshot files to retain (0 is unlimited). Deprecated in v3.6 and will be decommissioned in v3.8.", field: func(c *Config) any { return &c.MaxSnapshots }},
	{name: "max-wals", group: groupMember, help: "Maximum number of wal files to retain (0 is unlimited).", field: func(c *Config) any { return &c.MaxWALs }},
	{name: "memory-mlock", group: groupMember, show: "-", help: "Enable to enforce etcd pages (in particular bbolt) to stay in RAM.", field: func(c *Config) any { return &c.MemoryMlock }},
	{name: "quota-backend-bytes", group: groupMember, help: "Sets the maximum size (in bytes) that the etcd backend database may consume. Exceeding this triggers an alarm and puts etcd in read-only mode. Set to 0 to use the default 2GiB limit.", field: func(c *Config) any { return &c.QuotaBackendBytes }},
	{name: "backend-bbolt-freelist-type", group: groupMember, show: "'map'", help: "BackendFreelistType specifies the type of freelist that boltdb backend uses(array and map are supported types).", field: func(c *Config) any { return &c.BackendFreelistType }},
	{name: "backend-batch-interval", group: groupMember, show: "''", help: "BackendBatchInterval is the maximum time before commit the backend transaction.", field: func(c *Config) any { return &c.BackendBatchInterval }},
	{name: "backend-batch-limit", group: groupMember, help: "BackendBatchLimit is the maximum operations before commit the backend transaction.", field: func(c *Config) any { return &c.BackendBatchLimit }},
	{name: "max-txn-ops", group: groupMember, help: "Maximum number of operations permitted in a transaction.", field: func(c *Config) any { return &c.MaxTxnOps }},
	{name: "max-request-bytes", group: groupMember, help: "Maximum client request size in bytes the server will accept.", field: func(c *Config) any { return &c.MaxRequestBytes }},
	{name: "max-concurrent-streams", group: groupMember, show: "'math.MaxUint32'", help: "Maximum concurrent streams that each client can open at a time.", field: func(c *Config) any { return &c.MaxConcurrentStreams }},
	{name: "grpc-keepalive-min-time", group: groupMember, help: "Minimum duration interval that a client should wait before pinging server.", field: func(c *Config) any { return &c.GRPCKeepAliveMinTime }},
	{name: "grpc-keepalive-interval", group: groupMember, show: "'2h'", help: "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).", field: func(c *Config) any { return &c.GRPCKeepAliveInterval }},
	{name: "grpc-keepalive-timeout", group: groupMember, help: "Additional duration of wait before closing a non-responsive connection (0 to disable).", field: func(c *Config) any { return &c.GRPCKeepAliveTimeout }},
	{name: "socket-reuse-port", group: groupMember, help: "Enable to set socket option SO_REUSEPORT on listeners allowing rebinding of a port already in use.", field: func(c *Config) any { return &c.SocketOpts.ReusePort }},
	{name: "socket-reuse-address", group: groupMember, help: "Enable to set socket option SO_REUSEADDR on listeners allowing binding to an address in TIME_WAIT state.", field: func(c *Config) any { return &c.SocketOpts.ReuseAddress }},
	{name: "enable-grpc-gateway", group: groupMember, show: "-", help: "Enable GRPC gateway.", field: func(c *Config) any { return &c.EnableGRPCGateway }},
	{name: "raft-read-timeout", group: groupMember, help: "Read timeout set on each rafthttp connection", field: func(c *Config) any { return &c.RaftReadTimeout }},
	{name: "raft-write-timeout", group: groupMember, help: "Write timeout set on each rafthttp connection", field: func(c *Config) any { return &c.RaftWriteTimeout }},
	{name: "feature-gates", group: groupMember, help: "A set of key=value pairs that describe server level feature gates for alpha/experimental features. Options are:\n" + gatesHelp(), field: func(c *Config) any { return &c.FeatureGates }},

	// Clustering
	{name: "initial-advertise-peer-urls", group: groupClustering, help: "List of this member's peer URLs to advertise to the rest of the cluster.", field: func(c *Config) any { return &c.InitialAdvertisePeerURLs }},
	{name: "initial-cluster", group: groupClustering, help: "Initial cluster configuration for bootstrapping.", field: func(c *Config) any { return &c.InitialCluster }},
	{name: "initial-cluster-state", group: groupClustering, kind: kindClusterState, help: "Initial cluster state ('new' when bootstrapping a new cluster or 'existing' when adding new members to an existing cluster).\nAfter successful initialization (bootstrapping or adding), flag is ignored on restarts", field: func(c *Config) any { return &c.InitialClusterState }},
	{name: "initial-cluster-token", group: groupClustering, help: "Initial cluster token for the etcd cluster during bootstrap.\nSpecifying this can protect you from unintended cross-cluster interaction when running multiple clusters.", field: func(c *Config) any { return &c.InitialClusterToken }},
	{name: "advertise-client-urls", group: groupClustering, help: "List of this member's client URLs to advertise to the public.\nThe client URLs advertised should be accessible to machines that talk to etcd cluster. etcd client libraries parse these URLs to connect to the cluster.", field: func(c *Config) any { return &c.AdvertiseClientURLs }},
	{name: "discovery", group: groupClustering, help: "Discovery URL used to bootstrap the cluster for v2 discovery. Will be deprecated in v3.7, and be decommissioned in v3.8.", field: func(c *Config) any { return &c.Discovery }},
	{name: "discovery-token", group: groupClustering, help: "V3 discovery: discovery token for the etcd cluster to be bootstrapped.", field: func(c *Config) any { return &c.DiscoveryCfg.Token }},
	{name: "discovery-endpoints", group: groupClustering, kind: kindUniqueStrings, help: "V3 discovery: List of gRPC endpoints of the discovery service.", field: func(c *Config) any { return &c.DiscoveryCfg.Client.Endpoints }},
	{name: "discovery-dial-timeout", group: groupClustering, help: "V3 discovery: dial timeout for client connections.", field: func(c *Config) any { return &c.DiscoveryCfg.Client.DialTimeout }},
	{name: "discovery-request-timeout", group: groupClustering, help: "V3 discovery: timeout for discovery requests (excluding dial timeout).", field: func(c *Config) any { return &c.DiscoveryCfg.Client.RequestTimeout }},
	{name: "discovery-keepalive-time", group: groupClustering, help: "V3 discovery: keepalive time for client connections.", field: func(c *Config) any { return &c.DiscoveryCfg.Client.KeepAliveTime }},
	{name: "discovery-keepalive-timeout", group: groupClustering, help: "V3 discovery: keepalive timeout for client connections.", field: func(c *Config) any { return &c.DiscoveryCfg.Client.KeepAliveTimeout }},
	{name: "discovery-insecure-transport", group: groupClustering, help: "V3 discovery: disable transport security for client connections.", field: func(c *Config) any { return &c.DiscoveryCfg.Client.Secure.InsecureTransport }},
	{name: "discovery-insecure-skip-tls-verify", group: groupClustering, help: "V3 discovery: skip server certificate verification (CAUTION: this option should be enabled only for testing purposes).", field: func(c *Config) any { return &c.DiscoveryCfg.Client.Secure.InsecureSkipVerify }},
	{name: "discovery-cert", group: groupClustering, help: "V3 discovery: identify secure client using this TLS certificate file.", field: func(c *Config) any { return &c.DiscoveryCfg.Client.Secure.Cert }},
	{name: "discovery-key", group: groupClustering, help: "V3 discovery: identify secure client using this TLS key file.", field: func(c *Config) any { return &c.DiscoveryCfg.Client.Secure.Key }},
	{name: "discovery-cacert", group: groupClustering, help: "V3 discovery: verify certificates of TLS-enabled secure servers using this CA bundle.", field: func(c *Config) any { return &c.DiscoveryCfg.Client.Secure.Cacert }},
	{name: "discovery-user", group: groupClustering, help: "V3 discovery: username[:password] for authentication (prompt if password is not supplied).", field: func(c *Config) any { return &c.DiscoveryCfg.Client.Auth.Username }},
	{name: "discovery-password", group: groupClustering, help: "V3 discovery: password for authentication (if this option is used, --user option shouldn't include password).", field: func(c *Config) any { return &c.DiscoveryCfg.Client.Auth.Password }},
	{name: "discovery-fallback", group: groupClustering, kind: kindFallback, help: "Expected behavior ('exit') when discovery services fails. Note that v2 proxy is removed.", field: func(c *Config) any { return &c.DiscoveryFallback }},
	{name: "discovery-proxy", group: groupClustering, help: "HTTP proxy to use for traffic to discovery service. Will be deprecated in v3.7, and be decommissioned in v3.8.", field: func(c *Config) any { return &c.DiscoveryProxy }},
	{name: "discovery-srv", group: groupClustering, help: "DNS srv domain used to bootstrap the cluster.", field: func(c *Config) any { return &c.DiscoverySRV }},
	{name: "discovery-srv-name", group: groupClustering, help: "Suffix to the dns srv name queried when bootstrapping.", field: func(c *Config) any { return &c.DiscoverySRVName }},
	{name: "strict-reconfig-check", group: groupClustering, help: "Reject reconfiguration requests that would cause quorum loss.", field: func(c *Config) any { return &c.StrictReconfigCheck }},
	{name: "pre-vote", group: groupClustering, help: "Enable the raft Pre-Vote algorithm to prevent disruption when a node that has been partitioned away rejoins the cluster.", field: func(c *Config) any { return &c.PreVote }},
	{name: "auto-compaction-retention", group: groupClustering, help: "Auto compaction retention length. 0 means disable auto compaction.", field: func(c *Config) any { return &c.AutoCompactionRetention }},
	{name: "auto-compaction-mode", group: groupClustering, help: "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention.", field: func(c *Config) any { return &c.AutoCompactionMode }},
	{name: "v2-deprecation", group: groupClustering, kind: kindV2Deprecation, help: "Phase of v2store deprecation. Deprecated and scheduled for removal in v3.8. The default value is enforced, ignoring user input.\nSupported values:\n  'not-yet'                // Issues a warning if v2store have meaningful content (default in v3.5)\n  'write-only'             // Custom v2 state is not allowed (default in v3.6)\n  'write-only-skip-check'  // Custom v2 state is not allowed similar to 'write-only', but bypass the v2 content check. WARNING: Users should read the 3.5 -> 3.6 upgrade guide and use this option at their own risk.\n  'write-only-drop-data'   // Custom v2 state will get DELETED ! (planned default in v3.7)\n  'gone'                   // v2store is not maintained any longer. (planned to cleanup anything related to v2store in v3.8)", field: func(c *Config) any { return &c.V2Deprecation }},
	{name: "enable-v2", group: groupClustering, help: "Serve the v2 HTTP API (/v2/keys, /v2/members, /v2/stats). cairn extension: etcd 3.6 has no v2 API and rejects this flag.", field: func(c *Config) any { return &c.EnableV2 }},

	// Security
	{name: "cert-file", group: groupSecurity, help: "Path to the client server TLS cert file.", field: func(c *Config) any { return &c.ClientTLS.CertFile }},
	{name: "key-file", group: groupSecurity, help: "Path to the client server TLS key file.", field: func(c *Config) any { return &c.ClientTLS.KeyFile }},
	{name: "client-cert-auth", group: groupSecurity, help: "Enable client cert authentication.", field: func(c *Config) any { return &c.ClientTLS.ClientCertAuth }},
	{name: "client-cert-file", group: groupSecurity, help: "Path to an explicit peer client TLS cert file otherwise cert file will be used when client auth is required.", field: func(c *Config) any { return &c.ClientTLS.ClientCertFile }},
	{name: "client-key-file", group: groupSecurity, help: "Path to an explicit peer client TLS key file otherwise key file will be used when client auth is required.", field: func(c *Config) any { return &c.ClientTLS.ClientKeyFile }},
	{name: "client-crl-file", group: groupSecurity, help: "Path to the client certificate revocation list file.", field: func(c *Config) any { return &c.ClientTLS.CRLFile }},
	{name: "client-cert-allowed-hostname", group: groupSecurity, kind: kindStrings, help: "Comma-separated list of SAN hostnames for client cert authentication.", field: func(c *Config) any { return &c.ClientTLS.AllowedHostnames }},
	{name: "trusted-ca-file", group: groupSecurity, help: "Path to the client server TLS trusted CA cert file.", field: func(c *Config) any { return &c.ClientTLS.TrustedCAFile }},
	{name: "auto-tls", group: groupSecurity, help: "Client TLS using generated certificates.", field: func(c *Config) any { return &c.ClientAutoTLS }},
	{name: "peer-cert-file", group: groupSecurity, help: "Path to the peer server TLS cert file.", field: func(c *Config) any { return &c.PeerTLS.CertFile }},
	{name: "peer-key-file", group: groupSecurity, help: "Path to the peer server TLS key file.", field: func(c *Config) any { return &c.PeerTLS.KeyFile }},
	{name: "peer-client-cert-auth", group: groupSecurity, help: "Enable peer client cert authentication.", field: func(c *Config) any { return &c.PeerTLS.ClientCertAuth }},
	{name: "peer-client-cert-file", group: groupSecurity, help: "Path to an explicit peer client TLS cert file otherwise peer cert file will be used when client auth is required.", field: func(c *Config) any { return &c.PeerTLS.ClientCertFile }},
	{name: "peer-client-key-file", group: groupSecurity, help: "Path to an explicit peer client TLS key file otherwise peer key file will be used when client auth is required.", field: func(c *Config) any { return &c.PeerTLS.ClientKeyFile }},
	{name: "peer-trusted-ca-file", group: groupSecurity, help: "Path to the peer server TLS trusted CA file.", field: func(c *Config) any { return &c.PeerTLS.TrustedCAFile }},
	{name: "peer-cert-allowed-cn", group: groupSecurity, kind: kindStrings, help: "Comma-separated list of allowed CNs for inter-peer TLS authentication.", field: func(c *Config) any { return &c.PeerTLS.AllowedCNs }},
	{name: "peer-cert-allowed-hostname", group: groupSecurity, kind: kindStrings, help: "Comma-separated list of allowed SAN hostnames for inter-peer TLS authentication.", field: func(c *Config) any { return &c.PeerTLS.AllowedHostnames }},
	{name: "peer-auto-tls", group: groupSecurity, help: "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided.", field: func(c *Config) any { return &c.PeerAutoTLS }},
	{name: "self-signed-cert-validity", group: groupSecurity, help: "The validity period of the client and peer certificates that are automatically generated by etcd when you specify ClientAutoTLS and PeerAutoTLS, the unit is year, and the default is 1.", field: func(c *Config) any { return &c.SelfSignedCertValidity }},
	{name: "peer-crl-file", group: groupSecurity, help: "Path to the peer certificate revocation list file.", field: func(c *Config) any { return &c.PeerTLS.CRLFile }},
	{name: "cipher-suites", group: groupSecurity, kind: kindStrings, help: "Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go).", field: func(c *Config) any { return &c.CipherSuites }},
	{name: "cors", group: groupSecurity, kind: kindCORS, help: "Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, (empty or * means allow all).", field: func(c *Config) any { return &c.CORS }},
	{name: "host-whitelist", group: groupSecurity, kind: kindUniqueStrings, help: "Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all).", field: func(c *Config) any { return &c.HostWhitelist }},
	{name: "tls-min-version", group: groupSecurity, help: "Minimum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3.", field: func(c *Config) any { return &c.TLSMinVersion }},
	{name: "tls-max-version", group: groupSecurity, help: "Maximum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3 (empty will be auto-populated by Go).", field: func(c *Config) any { return &c.TLSMaxVersion }},

	// Auth
	{name: "auth-token", group: groupAuth, help: "Specify a v3 authentication token type and its options ('simple' or 'jwt').", field: func(c *Config) any { return &c.AuthToken }},
	{name: "bcrypt-cost", group: groupAuth, show: "10", help: "Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. Valid values are between 4 and 31.", field: func(c *Config) any { return &c.BcryptCost }},
	{name: "auth-token-ttl", group: groupAuth, show: "300", help: "Time (in seconds) of the auth-token-ttl.", field: func(c *Config) any { return &c.AuthTokenTTL }},

	// Profiling and monitoring
	{name: "enable-pprof", group: groupProfiling, help: "Enable runtime profiling data via HTTP server. Address is at client URL + \"/debug/pprof/\"", field: func(c *Config) any { return &c.EnablePprof }},
	{name: "metrics", group: groupProfiling, help: "Set level of detail for exported metrics, specify 'extensive' to include server side grpc histogram metrics.", field: func(c *Config) any { return &c.Metrics }},
	{name: "listen-metrics-urls", group: groupProfiling, help: "List of URLs to listen on for the /metrics and /health endpoints. For https, the client URL TLS info is used.", field: func(c *Config) any { return &c.ListenMetricsURLs }},

	// Logging
	{name: "logger", group: groupLogging, help: "Currently only supports 'zap' for structured logging.", field: func(c *Config) any { return &c.Logger }},
	{name: "log-outputs", group: groupLogging, kind: kindUniqueStrings, help: "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets.", field: func(c *Config) any { return &c.LogOutputs }},
	{name: "log-level", group: groupLogging, help: "Configures log level. Only supports debug, info, warn, error, panic, or fatal.", field: func(c *Config) any { return &c.LogLevel }},
	{name: "log-format", group: groupLogging, help: "Configures log format. Only supports json, console.", field: func(c *Config) any { return &c.LogFormat }},
	{name: "enable-log-rotation", group: groupLogging, help: "Enable log rotation of a single log-outputs file target.", field: func(c *Config) any { return &c.EnableLogRotation }},
	{name: "log-rotation-config-json", group: groupLogging, help: "Configures log rotation if enabled with a JSON logger config. MaxSize(MB), MaxAge(days,0=no limit), MaxBackups(0=no limit), LocalTime(use computers local time), Compress(gzip)\".", field: func(c *Config) any { return &c.LogRotationConfigJSON }},
	{name: "warning-unary-request-duration", group: groupLogging, show: "'300ms'", help: "Set time duration after which a warning is logged if a unary request takes more than this duration.", field: func(c *Config) any { return &c.WarningUnaryRequestDuration }},

	// Distributed tracing
	{name: "experimental-enable-distributed-tracing", group: groupTracing, help: "Enable experimental distributed tracing." + deprecatedExp("enable-distributed-tracing"), field: func(c *Config) any { return &c.ExperimentalEnableDistributedTracing }},
	{name: "enable-distributed-tracing", group: groupTracing, help: "Enable distributed tracing.", field: func(c *Config) any { return &c.EnableDistributedTracing }},
	{name: "experimental-distributed-tracing-address", group: groupTracing, help: "Distributed tracing collector address." + deprecatedExp("distributed-tracing-address"), field: func(c *Config) any { return &c.ExperimentalDistributedTracingAddress }},
	{name: "distributed-tracing-address", group: groupTracing, help: "Distributed tracing collector address.", field: func(c *Config) any { return &c.DistributedTracingAddress }},
	{name: "experimental-distributed-tracing-service-name", group: groupTracing, help: "Distributed tracing service name, must be same across all etcd instances." + deprecatedExp("distributed-tracing-service-name"), field: func(c *Config) any { return &c.ExperimentalDistributedTracingServiceName }},
	{name: "distributed-tracing-service-name", group: groupTracing, help: "Distributed tracing service name, must be same across all etcd instances.", field: func(c *Config) any { return &c.DistributedTracingServiceName }},
	{name: "experimental-distributed-tracing-instance-id", group: groupTracing, help: "Distributed tracing instance ID, must be unique per each etcd instance." + deprecatedExp("distributed-tracing-instance-id"), field: func(c *Config) any { return &c.ExperimentalDistributedTracingInstanceID }},
	{name: "distributed-tracing-instance-id", group: groupTracing, help: "Distributed tracing instance ID, must be unique per each etcd instance.", field: func(c *Config) any { return &c.DistributedTracingInstanceID }},
	{name: "experimental-distributed-tracing-sampling-rate", group: groupTracing, help: "Number of samples to collect per million spans for distributed tracing. Disabled by default." + deprecatedExp("distributed-tracing-sampling-rate"), field: func(c *Config) any { return &c.ExperimentalDistributedTracingSamplingRate }},
	{name: "distributed-tracing-sampling-rate", group: groupTracing, help: "Number of samples to collect per million spans for distributed tracing.", field: func(c *Config) any { return &c.DistributedTracingSamplingRate }},

	// Former experimental features
	{name: "experimental-initial-corrupt-check", group: groupExperiment, help: "Enable to check data corruption before serving any client/peer traffic." + deprecatedExp("feature-gates=InitialCorruptCheck=true"), field: func(c *Config) any { return &c.ExperimentalInitialCorruptCheck }},
	{name: "experimental-corrupt-check-time", group: groupExperiment, help: "Duration of time between cluster corruption check passes." + deprecatedExp("corrupt-check-time"), field: func(c *Config) any { return &c.ExperimentalCorruptCheckTime }},
	{name: "corrupt-check-time", group: groupExperiment, help: "Duration of time between cluster corruption check passes.", field: func(c *Config) any { return &c.CorruptCheckTime }},
	{name: "experimental-compact-hash-check-enabled", group: groupExperiment, help: "Enable leader to periodically check followers compaction hashes." + deprecatedExp("feature-gates=CompactHashCheck=true"), field: func(c *Config) any { return &c.ExperimentalCompactHashCheckEnabled }},
	{name: "experimental-compact-hash-check-time", group: groupExperiment, show: "'1m'", help: "Duration of time between leader checks followers compaction hashes." + deprecatedExp("compact-hash-check-time"), field: func(c *Config) any { return &c.ExperimentalCompactHashCheckTime }},
	{name: "compact-hash-check-time", group: groupExperiment, show: "'1m'", help: "Duration of time between leader checks followers compaction hashes.", field: func(c *Config) any { return &c.CompactHashCheckTime }},
	{name: "experimental-enable-lease-checkpoint", group: groupExperiment, help: "ExperimentalEnableLeaseCheckpoint enables primary lessor to persist lease remainingTTL to prevent indefinite auto-renewal of long lived leases." + deprecatedExp("feature-gates=LeaseCheckpoint=true"), field: func(c *Config) any { return &c.ExperimentalEnableLeaseCheckpoint }},
	{name: "experimental-compaction-batch-limit", group: groupExperiment, show: "1000", help: "ExperimentalCompactionBatchLimit sets the maximum revisions deleted in each compaction batch." + deprecatedExp("compaction-batch-limit"), field: func(c *Config) any { return &c.ExperimentalCompactionBatchLimit }},
	{name: "compaction-batch-limit", group: groupExperiment, show: "1000", help: "CompactionBatchLimit sets the maximum revisions deleted in each compaction batch.", field: func(c *Config) any { return &c.CompactionBatchLimit }},
	{name: "experimental-peer-skip-client-san-verification", group: groupExperiment, help: "Skip verification of SAN field in client certificate for peer connections." + deprecatedExp("peer-skip-client-san-verification"), field: func(c *Config) any { return &c.ExperimentalPeerSkipClientSANVerification }},
	{name: "peer-skip-client-san-verification", group: groupExperiment, help: "Skip verification of SAN field in client certificate for peer connections.", field: func(c *Config) any { return &c.PeerTLS.SkipClientSANVerify }},
	{name: "experimental-watch-progress-notify-interval", group: groupExperiment, show: "'10m'", help: "Duration of periodical watch progress notification." + deprecatedExp("watch-progress-notify-interval"), field: func(c *Config) any { return &c.ExperimentalWatchProgressNotifyInterval }},
	{name: "watch-progress-notify-interval", group: groupExperiment, show: "'10m'", help: "Duration of periodical watch progress notification.", field: func(c *Config) any { return &c.WatchProgressNotifyInterval }},
	{name: "experimental-warning-apply-duration", group: groupExperiment, help: "Warning is generated if requests take more than this duration." + deprecatedExp("warning-apply-duration"), field: func(c *Config) any { return &c.ExperimentalWarningApplyDuration }},
	{name: "warning-apply-duration", group: groupExperiment, help: "Warning is generated if requests take more than this duration.", field: func(c *Config) any { return &c.WarningApplyDuration }},
	{name: "experimental-txn-mode-write-with-shared-buffer", group: groupExperiment, help: "Enable the write transaction to use a shared buffer in its readonly check operations." + deprecatedExp("feature-gates=TxnModeWriteWithSharedBuffer=true"), field: func(c *Config) any { return &c.ExperimentalTxnModeWriteWithSharedBuffer }},
	{name: "experimental-bootstrap-defrag-threshold-megabytes", group: groupExperiment, show: "-", help: "Enable the defrag during etcd server bootstrap on condition that it will free at least the provided threshold of disk space. Needs to be set to non-zero value to take effect." + deprecatedExp("bootstrap-defrag-threshold-megabytes"), field: func(c *Config) any { return &c.ExperimentalBootstrapDefragThresholdMegabytes }},
	{name: "bootstrap-defrag-threshold-megabytes", group: groupExperiment, show: "-", help: "Enable the defrag during etcd server bootstrap on condition that it will free at least the provided threshold of disk space. Needs to be set to non-zero value to take effect.", field: func(c *Config) any { return &c.BootstrapDefragThresholdMegabytes }},
	{name: "experimental-warning-unary-request-duration", group: groupExperiment, show: "'300ms'", help: "Set time duration after which a warning is generated if a unary request takes more than this duration." + deprecatedExp("warning-unary-request-duration"), field: func(c *Config) any { return &c.ExperimentalWarningUnaryRequestDuration }},
	{name: "max-learners", group: groupExperiment, help: "Set the max number of learner members allowed in the cluster membership.", field: func(c *Config) any { return &c.MaxLearners }},
	{name: "experimental-compaction-sleep-interval", group: groupExperiment, show: "-", help: "Sets the sleep interval between each compaction batch." + deprecatedExp("compaction-sleep-interval"), field: func(c *Config) any { return &c.ExperimentalCompactionSleepInterval }},
	{name: "compaction-sleep-interval", group: groupExperiment, show: "-", help: "Sets the sleep interval between each compaction batch.", field: func(c *Config) any { return &c.CompactionSleepInterval }},
	{name: "experimental-downgrade-check-time", group: groupExperiment, show: "-", help: "Duration of time between two downgrade status checks." + deprecatedExp("downgrade-check-time"), field: func(c *Config) any { return &c.ExperimentalDowngradeCheckTime }},
	{name: "downgrade-check-time", group: groupExperiment, show: "-", help: "Duration of time between two downgrade status checks.", field: func(c *Config) any { return &c.DowngradeCheckTime }},
	{name: "experimental-enable-lease-checkpoint-persist", group: groupExperiment, help: "Enable persisting remainingTTL to prevent indefinite auto-renewal of long lived leases. Always enabled in v3.6. Should be used to ensure smooth upgrade from v3.5 clusters with this feature enabled. Requires experimental-enable-lease-checkpoint to be enabled." + deprecatedExp("feature-gates=LeaseCheckpointPersist=true"), field: func(c *Config) any { return &c.ExperimentalEnableLeaseCheckpointPersist }},
	{name: "experimental-memory-mlock", group: groupExperiment, show: "-", help: "Enable to enforce etcd pages (in particular bbolt) to stay in RAM." + deprecatedExp("memory-mlock"), field: func(c *Config) any { return &c.ExperimentalMemoryMlock }},
	{name: "experimental-snapshot-catchup-entries", group: groupExperiment, show: "-", help: "Number of entries for a slow follower to catch up after compacting the raft storage entries." + deprecatedExp("snapshot-catchup-entries"), field: func(c *Config) any { return &c.ExperimentalSnapshotCatchUpEntries }},
	{name: "snapshot-catchup-entries", group: groupExperiment, show: "-", help: "Number of entries for a slow follower to catch up after compacting the raft storage entries.", field: func(c *Config) any { return &c.SnapshotCatchUpEntries }},
	{name: "experimental-stop-grpc-service-on-defrag", group: groupExperiment, show: "-", help: "Enable etcd gRPC service to stop serving client requests on defragmentation." + deprecatedExp("feature-gates=StopGRPCServiceOnDefrag=true"), field: func(c *Config) any { return &c.ExperimentalStopGRPCServiceOnDefrag }},

	// Unsafe
	{name: "force-new-cluster", group: groupUnsafe, help: "Force to create a new one-member cluster.", field: func(c *Config) any { return &c.ForceNewCluster }},
	{name: "unsafe-no-fsync", group: groupUnsafe, help: "Disables fsync, unsafe, will cause data loss.", field: func(c *Config) any { return &c.UnsafeNoFsync }},

	// Listed in the usage line, not the flag listing.
	{name: "config-file", group: groupHidden, help: "Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.", field: func(c *Config) any { return &c.ConfigFile }},
}

func lookupSpec(name string) (flagSpec, bool) {
	for _, s := range flagTable {
		if s.name == name {
			return s, true
		}
	}
	return flagSpec{}, false
}

// flagValue wraps the field of spec in c as a flag.Value.
func flagValue(spec flagSpec, c *Config) flag.Value {
	p := spec.field(c)
	switch spec.kind {
	case kindStrings:
		return &stringsValue{p.(*[]string)}
	case kindUniqueStrings:
		return &uniqueStringsValue{p.(*[]string)}
	case kindCORS:
		return &urlsValue{except: "*", raw: p.(*[]string)}
	case kindClusterState:
		return &selectValue{p: p.(*string), valid: []string{ClusterStateNew, ClusterStateExisting}}
	case kindFallback:
		return &selectValue{p: p.(*string), valid: []string{"exit", "proxy"}}
	case kindV2Deprecation:
		return &selectListValue{p: p.(*string), valid: []string{V2DeprWriteOnly, V2DeprWriteOnlySkipCheck, V2DeprWriteOnlyDrop, V2DeprGone}}
	}
	switch p := p.(type) {
	case *[]url.URL:
		return &urlsValue{p: p}
	case *uint32:
		return &uint32Value{p}
	case *FeatureGates:
		return &gatesValue{p}
	}
	panic(fmt.Sprintf("config: flag %s has no value kind for %T", spec.name, p))
}

// newFlagSet binds every flag to c's fields; c's current values are the
// defaults. version receives --version. Errors go to out.
func newFlagSet(c *Config, version *bool, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("etcd", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { fmt.Fprint(out, usageLine+"\n") }
	for _, s := range flagTable {
		switch p := s.field(c).(type) {
		case *string:
			if s.kind == kindPlain {
				fs.StringVar(p, s.name, *p, s.help)
				continue
			}
		case *bool:
			fs.BoolVar(p, s.name, *p, s.help)
			continue
		case *uint:
			fs.UintVar(p, s.name, *p, s.help)
			continue
		case *uint64:
			fs.Uint64Var(p, s.name, *p, s.help)
			continue
		case *int:
			fs.IntVar(p, s.name, *p, s.help)
			continue
		case *int64:
			fs.Int64Var(p, s.name, *p, s.help)
			continue
		case *time.Duration:
			fs.DurationVar(p, s.name, *p, s.help)
			continue
		}
		fs.Var(flagValue(s, c), s.name, s.help)
	}
	fs.BoolVar(version, "version", false, "Print the version and exit.")
	for _, n := range legacyIgnored {
		fs.Var(&ignoredValue{name: n, p: &c.IgnoredLegacy}, n, "")
	}
	return fs
}
