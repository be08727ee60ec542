package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/tlsutil"
	"go.uber.org/zap"
)

// Validate checks the configuration and returns the first problem, with
// etcd 3.6.16's text, in etcd's order (spec A.5). It never changes c.
func (c *Config) Validate() error {
	if err := c.checkUnary(); err != nil {
		return err
	}
	if err := c.checkGateClash(); err != nil {
		return err
	}
	if err := c.checkFallback(); err != nil {
		return err
	}
	return c.checkBody(nil, nil)
}

// FeatureEnabled reports whether a feature gate is on: set by
// --feature-gates, else by its explicitly set --experimental-* bool, else its
// default. The two sources never both name a gate in a valid Config.
func (c *Config) FeatureEnabled(gate string) bool {
	if v, ok := c.FeatureGates[gate]; ok {
		return v
	}
	for _, g := range gateTable {
		if g.name == gate && g.oldFlag != "" && c.ExplicitlySet(g.oldFlag) {
			spec, _ := lookupSpec(g.oldFlag)
			return *spec.field(c).(*bool)
		}
	}
	return FeatureGates(nil).Enabled(gate)
}

// checkUnary: both forms of the unary warning threshold are set. etcd checks
// it after everything else, and it replaces any earlier error.
func (c *Config) checkUnary() error {
	if c.ExperimentalWarningUnaryRequestDuration != 0 && c.WarningUnaryRequestDuration != 0 {
		return errors.New("both --experimental-warning-unary-request-duration and --warning-unary-request-duration flags are set. Use only --warning-unary-request-duration")
	}
	return nil
}

// checkGateClash: an explicitly set --experimental-* bool whose gate also
// appears in the feature-gates text (a substring test, as in etcd).
func (c *Config) checkGateClash() error {
	text := c.gatesText
	if text == "" {
		text = c.FeatureGates.String()
	}
	for _, g := range gateTable {
		if g.oldFlag == "" || !c.ExplicitlySet(g.oldFlag) || !strings.Contains(text, g.name) {
			continue
		}
		spec, _ := lookupSpec(g.oldFlag)
		v := *spec.field(c).(*bool)
		on := c.FeatureGates.Enabled(g.name)
		return fmt.Errorf("cannot specify both flags: --%s=%v and --feature-gates=%s=%v at the same time, please just use --feature-gates=%s=%v",
			g.oldFlag, v, g.name, on, g.name, on)
	}
	return nil
}

func (c *Config) checkFallback() error {
	if c.DiscoveryFallback == "proxy" {
		return errors.New(`v2 proxy is deprecated, and --discovery-fallback can't be configured as "proxy"`)
	}
	return nil
}

// checkBody is etcd's embed-level validation. warn receives the warnings
// etcd logs on the way; build builds the logger once logging is valid. Both
// may be nil.
func (c *Config) checkBody(warn func(string, ...zap.Field), build func(loggingPlan) error) error {
	if warn == nil {
		warn = func(string, ...zap.Field) {}
	}
	for _, r := range experimentalRenames {
		if c.ExplicitlySet(r[0]) && c.ExplicitlySet(r[1]) {
			return fmt.Errorf("cannot set --%s and --%s at the same time, please use --%s only", r[0], r[1], r[1])
		}
	}
	plan, err := c.checkLogging()
	if err != nil {
		return err
	}
	if build != nil {
		if err := build(plan); err != nil {
			return err
		}
	}
	for _, us := range [][]url.URL{c.ListenPeerURLs, c.ListenClientURLs, c.ListenClientHTTPURLs} {
		if err := checkBindURLs(us); err != nil {
			return err
		}
	}
	if len(c.ListenClientHTTPURLs) == 0 {
		warn("Running http and grpc server on single port. This is not recommended for production.")
	}
	if err := checkBindURLs(c.ListenMetricsURLs); err != nil {
		return err
	}
	if err := checkHostURLs(c.InitialAdvertisePeerURLs); err != nil {
		return fmt.Errorf(`--initial-advertise-peer-urls %q must be "host:port" (%w)`, joinURLs(c.InitialAdvertisePeerURLs), err)
	}
	if err := checkHostURLs(c.AdvertiseClientURLs); err != nil {
		return fmt.Errorf(`--advertise-client-urls %q must be "host:port" (%w)`, joinURLs(c.AdvertiseClientURLs), err)
	}
	if c.InitialClusterState != ClusterStateNew && c.InitialClusterState != ClusterStateExisting {
		return fmt.Errorf("unexpected clusterState %q", c.InitialClusterState)
	}
	endpoints := c.DiscoveryCfg.Client.Endpoints
	n := 0
	for _, set := range []bool{c.Discovery != "", c.InitialCluster != "", c.DiscoverySRV != "", len(endpoints) > 0} {
		if set {
			n++
		}
	}
	if n > 1 {
		return ErrConflictBootstrapFlags
	}
	sec, auth := c.DiscoveryCfg.Client.Secure, c.DiscoveryCfg.Client.Auth
	v3 := len(endpoints) > 0 || c.DiscoveryCfg.Token != "" || sec.Cert != "" || sec.Key != "" || sec.Cacert != "" || auth.Username != "" || auth.Password != ""
	if c.DiscoveryProxy != "" && v3 {
		return errors.New("both v2 discovery settings (discovery, discovery-proxy) and v3 discovery settings (discovery-token, discovery-endpoints, discovery-cert, discovery-key, discovery-cacert, discovery-user, discovery-password) are set")
	}
	if (c.DiscoveryCfg.Token != "") != (len(endpoints) > 0) {
		return errors.New("both --discovery-token and --discovery-endpoints must be set")
	}
	for _, ep := range endpoints {
		if strings.TrimSpace(ep) == "" {
			return errors.New("--discovery-endpoints must not contain empty endpoints")
		}
	}
	if c.HeartbeatMs == 0 {
		return fmt.Errorf("--heartbeat-interval must be >0 (set to %dms)", c.HeartbeatMs)
	}
	if c.ElectionMs == 0 {
		return fmt.Errorf("--election-timeout must be >0 (set to %dms)", c.ElectionMs)
	}
	if 5*c.HeartbeatMs > c.ElectionMs {
		return fmt.Errorf("--election-timeout[%vms] should be at least as 5 times as --heartbeat-interval[%vms]", c.ElectionMs, c.HeartbeatMs)
	}
	if c.ElectionMs > MaxElectionMs {
		return fmt.Errorf("--election-timeout[%vms] is too long, and should be set less than %vms", c.ElectionMs, MaxElectionMs)
	}
	if c.ListenClientURLs != nil && c.AdvertiseClientURLs == nil {
		return ErrUnsetAdvertiseClientURLs
	}
	switch c.AutoCompactionMode {
	case CompactionModePeriodic, CompactionModeRevision:
	case "":
		return errors.New("undefined auto-compaction-mode")
	default:
		return fmt.Errorf("unknown auto-compaction-mode %q", c.AutoCompactionMode)
	}
	if c.EnableDistributedTracing {
		var terr error
		switch {
		case c.DistributedTracingSamplingRate < 0:
			terr = errors.New("tracing sampling rate must be positive")
		case c.DistributedTracingSamplingRate > 1000000:
			terr = errors.New("tracing sampling rate must be less than 1000000")
		}
		if terr != nil {
			return fmt.Errorf("distributed tracing configurition is not valid: (%w)", terr)
		}
	}
	persist, checkpoint := c.FeatureEnabled(GateLeaseCheckpointPersist), c.FeatureEnabled(GateLeaseCheckpoint)
	if !persist && checkpoint {
		warn("Detected that checkpointing is enabled without persistence. Consider enabling feature gate LeaseCheckpointPersist")
	}
	if persist && !checkpoint {
		return errors.New("enabling feature gate LeaseCheckpointPersist requires enabling feature gate LeaseCheckpoint")
	}
	if c.ExperimentalCompactHashCheckTime <= 0 {
		return fmt.Errorf("--experimental-compact-hash-check-time must be >0 (set to %v)", c.ExperimentalCompactHashCheckTime)
	}
	if c.CompactHashCheckTime <= 0 {
		return fmt.Errorf("--compact-hash-check-time must be >0 (set to %v)", c.CompactHashCheckTime)
	}
	if c.Name == DefaultName {
		warn("it isn't recommended to use default name, please set a value for --name. Note that etcd might run into issue when multiple members have the same default name", zap.String("name", c.Name))
	}
	minV, err := tlsutil.GetTLSVersion(c.TLSMinVersion)
	if err != nil {
		return err
	}
	maxV, err := tlsutil.GetTLSVersion(c.TLSMaxVersion)
	if err != nil {
		return err
	}
	if maxV != 0 && minV > maxV {
		return fmt.Errorf("min version (%s) is greater than max version (%s)", c.TLSMinVersion, c.TLSMaxVersion)
	}
	if minV == tls.VersionTLS13 && len(c.CipherSuites) > 0 {
		return errors.New("cipher suites cannot be configured when only TLS1.3 is enabled")
	}
	return nil
}

// checkBindURLs: listen URLs must name an IP literal or localhost.
func checkBindURLs(us []url.URL) error {
	for _, u := range us {
		if u.Scheme == "unix" || u.Scheme == "unixs" {
			continue
		}
		host, _, err := net.SplitHostPort(u.Host)
		if err != nil {
			return err
		}
		if host != "localhost" && net.ParseIP(host) == nil {
			return fmt.Errorf("expected IP in URL for binding (%s)", u.String())
		}
	}
	return nil
}

// checkHostURLs: advertised URLs must have a host.
func checkHostURLs(us []url.URL) error {
	for _, u := range us {
		host, _, err := net.SplitHostPort(u.Host)
		if err != nil {
			return err
		}
		if host == "" {
			return fmt.Errorf("unexpected empty host (%s)", u.String())
		}
	}
	return nil
}

// joinURLs joins URLs in their order, comma separated.
func joinURLs(us []url.URL) string {
	ss := make([]string, len(us))
	for i := range us {
		ss[i] = us[i].String()
	}
	return strings.Join(ss, ",")
}
