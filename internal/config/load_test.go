package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

func mustLoad(t *testing.T, args, env []string) *Config {
	t.Helper()
	c, err := Load(append([]string{"cairn"}, args...), env, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("Load(%q, %q): %v", args, env, err)
	}
	return c
}

// TestFlagDefaultsMatchDefault: parsing no flags yields Default() (A.4).
func TestFlagDefaultsMatchDefault(t *testing.T) {
	c := Default()
	var version bool
	fs := newFlagSet(c, &version, io.Discard)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("flag set changed the defaults:\n%+v\nwant\n%+v", c, Default())
	}
	// Each flag's registered default is the Default() field value.
	d := Default()
	for _, s := range flagTable {
		f := fs.Lookup(s.name)
		if f == nil {
			t.Errorf("flag %s not registered", s.name)
			continue
		}
		if got, want := f.DefValue, flagValueString(s, d); got != want && !(got == "" && want == "") {
			t.Errorf("flag %s default %q, Default() has %q", s.name, got, want)
		}
	}
	want := map[string]any{
		"name": "default", "data-dir": "", "snapshot-count": uint64(10000), "heartbeat-interval": uint(100),
		"election-timeout": uint(1000), "initial-cluster": "default=http://localhost:2380",
		"initial-cluster-token": "etcd-cluster", "max-txn-ops": uint(128), "max-request-bytes": uint(1572864),
		"quota-backend-bytes": int64(0), "max-concurrent-streams": uint32(4294967295), "enable-v2": true,
		"grpc-keepalive-interval": 2 * time.Hour, "v2-deprecation": "write-only", "discovery-fallback": "exit",
		"initial-cluster-state": "new", "auto-compaction-retention": "0", "auth-token": "simple",
		"log-outputs": []string{"default"}, "cors": []string{"*"}, "tls-min-version": "TLS1.2",
	}
	for name, v := range want {
		s, _ := lookupSpec(name)
		if got := reflect.ValueOf(s.field(d)).Elem().Interface(); !reflect.DeepEqual(got, v) {
			t.Errorf("default %s = %v, want %v", name, got, v)
		}
	}
	if u := d.ListenClientURLs; len(u) != 1 || u[0].String() != "http://localhost:2379" {
		t.Errorf("listen-client-urls default %v", u)
	}
}

// TestEveryFlagHasEnvAndField: every flag binds a field and an ETCD_* name.
func TestEveryFlagHasEnvAndField(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range flagTable {
		if seen[s.name] {
			t.Errorf("duplicate flag %s", s.name)
		}
		seen[s.name] = true
		if s.help == "" {
			t.Errorf("flag %s has no help", s.name)
		}
		_ = flagValueString(s, Default()) // panics on an unbindable field
	}
	if EnvName("initial-cluster-token") != "ETCD_INITIAL_CLUSTER_TOKEN" {
		t.Error(EnvName("initial-cluster-token"))
	}
}

func TestFlagSyntax(t *testing.T) {
	c := mustLoad(t, []string{"-name", "a", "--data-dir=/d", "-pre-vote=false", "--strict-reconfig-check=false", "--snapshot=1", "-v"}, nil)
	if c.Name != "a" || c.DataDir != "/d" || c.PreVote || c.StrictReconfigCheck {
		t.Errorf("parsed %+v", c)
	}
	if !reflect.DeepEqual(c.IgnoredLegacy, []string{"snapshot", "v"}) {
		t.Errorf("ignored legacy %v", c.IgnoredLegacy)
	}
	if !c.ExplicitlySet("name") || c.ExplicitlySet("wal-dir") {
		t.Error("explicit set tracking")
	}
	// URL lists are sorted and de-duplicated; cors and host-whitelist are sets.
	c = mustLoad(t, []string{"--listen-client-urls=http://127.0.0.2:1, http://127.0.0.1:1,http://127.0.0.2:1", "--advertise-client-urls=http://a:1",
		"--host-whitelist=b,a,b", "--cors=http://b:1,http://a:1"}, nil)
	if got := urlsString(c.ListenClientURLs); got != "http://127.0.0.1:1,http://127.0.0.2:1" || len(c.ListenClientURLs) != 2 {
		t.Errorf("listen-client-urls %v", got)
	}
	if !reflect.DeepEqual(c.HostWhitelist, []string{"a", "b"}) || !reflect.DeepEqual(c.CORS, []string{"http://a:1", "http://b:1"}) {
		t.Errorf("sets %v %v", c.HostWhitelist, c.CORS)
	}
	// --enable-v2 is cairn's own (etcd 3.6 rejects it).
	if c := mustLoad(t, []string{"--enable-v2=false"}, nil); c.EnableV2 {
		t.Error("--enable-v2=false ignored")
	}
	// Bad values print the message and the short usage.
	var errb bytes.Buffer
	_, err := Load([]string{"cairn", "--nope"}, nil, io.Discard, &errb)
	assertExit(t, err, 2)
	if errb.String() != "flag provided but not defined: -nope\n"+usageLine+"\n" {
		t.Errorf("stderr %q", errb.String())
	}
}

func TestDerivedValues(t *testing.T) {
	c := mustLoad(t, []string{"--name=n1", "--initial-advertise-peer-urls=http://127.0.0.1:1,http://127.0.0.2:1"}, nil)
	if c.InitialCluster != "n1=http://127.0.0.1:1,n1=http://127.0.0.2:1" {
		t.Errorf("initial-cluster %q", c.InitialCluster)
	}
	if c.DataDir != "n1.etcd" {
		t.Errorf("data-dir %q", c.DataDir)
	}
	c = mustLoad(t, []string{"--name=n1", "--initial-cluster=x=http://127.0.0.1:1"}, nil)
	if c.InitialCluster != "x=http://127.0.0.1:1" {
		t.Errorf("explicit initial-cluster replaced: %q", c.InitialCluster)
	}
	c = mustLoad(t, []string{"--discovery-srv=example.com"}, nil)
	if c.InitialCluster != "" {
		t.Errorf("discovery did not clear initial-cluster: %q", c.InitialCluster)
	}
	c = mustLoad(t, []string{"--experimental-compaction-batch-limit=7", "--experimental-peer-skip-client-san-verification",
		"--experimental-distributed-tracing-address=h:1", "--raft-read-timeout=1s", "--v2-deprecation=gone"}, nil)
	if c.CompactionBatchLimit != 7 || !c.PeerTLS.SkipClientSANVerify || c.DistributedTracingAddress != "h:1" {
		t.Errorf("experimental values not copied: %d %v %q", c.CompactionBatchLimit, c.PeerTLS.SkipClientSANVerify, c.DistributedTracingAddress)
	}
	if c.RaftReadTimeout != 5*time.Second || c.V2Deprecation != V2DeprWriteOnly {
		t.Errorf("raft-read-timeout %v v2-deprecation %q", c.RaftReadTimeout, c.V2Deprecation)
	}
	if c := mustLoad(t, []string{"--v2-deprecation=write-only-skip-check"}, nil); c.V2Deprecation != V2DeprWriteOnlySkipCheck {
		t.Errorf("v2-deprecation %q", c.V2Deprecation)
	}
	if c.EffectiveWarningUnaryRequestDuration() != 300*time.Millisecond {
		t.Error("unary default")
	}
	c = mustLoad(t, []string{"--experimental-warning-unary-request-duration=2s"}, nil)
	if c.EffectiveWarningUnaryRequestDuration() != 2*time.Second {
		t.Error("unary experimental")
	}
	c = mustLoad(t, []string{"--experimental-initial-corrupt-check", "--feature-gates=AllBeta=false"}, nil)
	if !c.FeatureEnabled(GateInitialCorruptCheck) || c.FeatureEnabled(GateTxnModeWriteWithSharedBuffer) || c.FeatureEnabled(GateLeaseCheckpoint) {
		t.Errorf("gates %v", c.FeatureGates)
	}
}

// logMsgs lists "level msg" of records.
func logMsgs(recs []LogRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Level.String()+" "+r.Msg)
	}
	return out
}

func TestEnvironment(t *testing.T) {
	env := []string{"ETCD_NAME=envname", "ETCD_VERSION=9", "ETCD_BOGUS=1", "ETCD_WAL_DIR=", "PATH=/bin", "ETCD_MAX_SNAPSHOTS=3", "ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:1", "ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:1"}
	c := mustLoad(t, []string{"--data-dir=/d"}, env)
	if c.Name != "envname" || c.MaxSnapshots != 3 || !c.ExplicitlySet("name") {
		t.Errorf("env not applied: %q %d", c.Name, c.MaxSnapshots)
	}
	got := strings.Join(logMsgs(c.ParseLogs()), "\n")
	want := strings.Join([]string{
		"warn cannot set special environment variable",
		"info recognized and used environment variable", // advertise-client-urls (flag order)
		"info recognized and used environment variable", // listen-client-urls
		"info recognized and used environment variable", // max-snapshots
		"info recognized and used environment variable", // name
		"warn unrecognized environment variable",        // ETCD_BOGUS=1
		"warn unrecognized environment variable",        // ETCD_WAL_DIR= (empty: not used)
		"warn Running http and grpc server on single port. This is not recommended for production.",
		"warn --max-snapshots is deprecated in 3.6 and will be decommissioned in 3.8.",
		"info Running: ",
	}, "\n")
	if got != want {
		t.Errorf("logs:\n%s\nwant:\n%s", got, want)
	}
	if f := c.ParseLogs()[5].Fields[0]; f.String != "ETCD_BOGUS=1" || !c.ParseLogs()[5].Bootstrap {
		t.Errorf("unrecognized field %+v", f)
	}
	// The default name warns, and an empty data dir is filled in.
	c = mustLoad(t, nil, nil)
	msgs := logMsgs(c.ParseLogs())
	if msgs[1] != "warn it isn't recommended to use default name, please set a value for --name. Note that etcd might run into issue when multiple members have the same default name" ||
		msgs[len(msgs)-1] != "warn 'data-dir' was empty; using default" || c.DataDir != "default.etcd" {
		t.Errorf("logs %q data-dir %q", msgs, c.DataDir)
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "etcd.yaml")
	yaml := `name: f1
data-dir: /data
heartbeat-interval: 200
election-timeout: 2000
grpc-keepalive-min-time: 10000000000
listen-client-urls: http://127.0.0.1:2379,http://127.0.0.2:2379
log-outputs: [stderr]
cipher-suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
feature-gates: CompactHashCheck=true
initial-cluster-state: ""
experimental-snapshot-catch-up-entries: 77
max-snapshots: 2
client-transport-security:
  cert-file: /c.crt
  key-file: /c.key
  client-cert-auth: true
peer-transport-security:
  trusted-ca-file: /ca
  allowed-cn: [a, b]
  skip-client-san-verification: true
discovery-config:
  client:
    dial-timeout: 1000000000
self-signed-cert-validity: 0
enable-v2: false
unknown-key: ignored
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// Flags other than --config-file and every ETCD_* variable are ignored.
	c := mustLoad(t, []string{"--config-file", path, "--name=ignored"}, []string{"ETCD_NAME=x", "ETCD_HEARTBEAT_INTERVAL=bad"})
	if c.Name != "f1" || c.HeartbeatMs != 200 || c.GRPCKeepAliveMinTime != 10*time.Second || c.ConfigFile != path {
		t.Errorf("file values: %q %d %v", c.Name, c.HeartbeatMs, c.GRPCKeepAliveMinTime)
	}
	if urlsString(c.ListenClientURLs) != "http://127.0.0.1:2379,http://127.0.0.2:2379" || urlsString(c.AdvertiseClientURLs) != "http://localhost:2379" {
		t.Errorf("urls %v %v", c.ListenClientURLs, c.AdvertiseClientURLs)
	}
	if c.ClientTLS.CertFile != "/c.crt" || !c.ClientTLS.ClientCertAuth || c.PeerTLS.TrustedCAFile != "/ca" ||
		!reflect.DeepEqual(c.PeerTLS.AllowedCNs, []string{"a", "b"}) || !c.PeerTLS.SkipClientSANVerify {
		t.Errorf("tls %+v %+v", c.ClientTLS, c.PeerTLS)
	}
	if !c.FeatureEnabled(GateCompactHashCheck) || c.InitialClusterState != "new" || c.SelfSignedCertValidity != 1 || c.EnableV2 {
		t.Error("gates, cluster state, cert validity or enable-v2")
	}
	if c.SnapshotCatchUpEntries != 77 || c.DiscoveryCfg.Client.DialTimeout != time.Second || !c.DiscoveryCfg.Client.Secure.InsecureTransport {
		t.Errorf("catch-up %d discovery %+v", c.SnapshotCatchUpEntries, c.DiscoveryCfg)
	}
	if !c.ExplicitlySet("peer-trusted-ca-file") || !c.ExplicitlySet("cert-file") || !c.ExplicitlySet("max-snapshots") {
		t.Error("file keys not explicit")
	}
	msgs := logMsgs(c.ParseLogs())
	if !contains(msgs, "info loaded server configuration, other configuration command line flags and environment variables will be ignored if provided") ||
		!contains(msgs, "warn --max-snapshots is deprecated in 3.6 and will be decommissioned in 3.8.") || contains(msgs, "warn unrecognized environment variable") {
		t.Errorf("logs %q", msgs)
	}
	// ETCD_CONFIG_FILE is used when the flag is absent.
	if c := mustLoad(t, nil, []string{"ETCD_CONFIG_FILE=" + path}); c.Name != "f1" {
		t.Error("ETCD_CONFIG_FILE ignored")
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestValidateIsPure(t *testing.T) {
	c := Default()
	before := *c
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*c, before) {
		t.Error("Validate changed the config")
	}
	c.ListenClientURLs = []url.URL{{Scheme: "http", Host: "127.0.0.1:1"}}
	c.AdvertiseClientURLs = nil
	if err := c.Validate(); !errors.Is(err, ErrUnsetAdvertiseClientURLs) {
		t.Errorf("err = %v", err)
	}
	c = Default()
	c.Discovery, c.InitialCluster = "http://d", "a=http://127.0.0.1:1"
	if err := c.Validate(); !errors.Is(err, ErrConflictBootstrapFlags) {
		t.Errorf("err = %v", err)
	}
}

func TestExitErrorLogs(t *testing.T) {
	_, err := Load([]string{"cairn", "--listen-client-urls=http://127.0.0.1:1"}, []string{"ETCD_NAME=x"}, io.Discard, io.Discard)
	ee := assertExit(t, err, 1)
	msgs := logMsgs(ee.Logs)
	n := len(msgs)
	if n < 3 || msgs[n-2] != "warn failed to verify flags" || msgs[n-1] != "warn advertise client URLs are not set" || ee.Logs[0].Msg != "recognized and used environment variable" {
		t.Errorf("logs %q", msgs)
	}
	if !errors.Is(ee, ErrUnsetAdvertiseClientURLs) || ee.Logger == nil {
		t.Errorf("err %v logger %v", ee.Err, ee.Logger)
	}
}

func TestBuildLoggerShape(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cairn.log")
	c := mustLoad(t, []string{"--name=x", "--log-outputs=" + path, "--log-level=warn"}, nil)
	lg, err := BuildLogger(c)
	if err != nil {
		t.Fatal(err)
	}
	WriteLogs(lg, lg, c.ParseLogs())
	lg.Info("dropped below warn")
	_ = lg.Sync()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
		t.Fatalf("%q: %v", lines, err)
	}
	ts, _ := rec["ts"].(string)
	if rec["level"] != "warn" || rec["msg"] != "'data-dir' was empty; using default" || rec["caller"] == nil {
		t.Errorf("record %v", rec)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000000Z0700", ts); err != nil {
		t.Errorf("ts %q: %v", ts, err)
	}
	for _, l := range lines {
		if strings.Contains(l, `"level":"info"`) {
			t.Errorf("info line at warn level: %s", l)
		}
	}
	// Console format and bad options.
	c2 := Default()
	c2.LogFormat = "console"
	if _, err := BuildLogger(c2); err != nil {
		t.Error(err)
	}
	c2.LogLevel = "loud"
	if _, err := BuildLogger(c2); !errors.Is(err, ErrUnrecognizedLevel) {
		t.Errorf("err %v", err)
	}
	if l, err := BootstrapLogger(); err != nil || !l.Core().Enabled(zapcore.InfoLevel) {
		t.Error("bootstrap logger")
	}
}

func TestCheckSupported(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--auth-token=simple"}, ""}, // set, but the default
		{[]string{"--auth-token=jwt,pub-key=x"}, "--auth-token"}, // not simple
		{[]string{"--experimental-memory-mlock"}, "--experimental-memory-mlock"},
		{[]string{"--experimental-initial-corrupt-check"}, ""}, // served
		{[]string{"--feature-gates=CompactHashCheck=true", "--corrupt-check-time=1m"}, ""},
		{[]string{"--feature-gates=LeaseCheckpoint=true,LeaseCheckpointPersist=true"}, ""}, // served
		{[]string{"--experimental-enable-lease-checkpoint"}, ""},
		{[]string{"--feature-gates=SetMemberLocalAddr=true"}, "--feature-gates=SetMemberLocalAddr=true"},
		{[]string{"--experimental-stop-grpc-service-on-defrag"}, "--experimental-stop-grpc-service-on-defrag"},
		{[]string{"--feature-gates=AllAlpha=true"}, "--feature-gates=SetMemberLocalAddr=true"},
		{[]string{"--feature-gates=TxnModeWriteWithSharedBuffer=false"}, "--feature-gates=TxnModeWriteWithSharedBuffer=false"},
		{[]string{"--v2-deprecation=gone"}, ""},
		{[]string{"--peer-cert-file=/x", "--discovery-srv=x"}, ""}, // discovery is served
		{[]string{"--discovery-token=t", "--discovery-endpoints=http://127.0.0.1:1", "--discovery-user=u"}, ""},
		{[]string{"--auto-tls", "--self-signed-cert-validity=3", "--client-crl-file=/x"}, ""},
		{[]string{"--enable-grpc-gateway=false"}, ""}, // the gateway can be turned off
	}
	for _, tc := range cases {
		c := mustLoad(t, append([]string{"--name=n"}, tc.args...), nil)
		err := CheckSupported(c, NotYetSupported)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.want != "" && (err == nil || err.Error() != "cairn does not support "+tc.want+" yet" || !errors.Is(err, ErrUnsupported)):
			t.Errorf("%q: err %v, want %s", tc.args, err, tc.want)
		}
	}
}

func TestFeatureGates(t *testing.T) {
	var g FeatureGates
	if err := g.set("AllAlpha=true,LeaseCheckpoint=false"); err != nil {
		t.Fatal(err)
	}
	if !g.Enabled(GateInitialCorruptCheck) || g.Enabled(GateLeaseCheckpoint) || !g.Enabled(GateTxnModeWriteWithSharedBuffer) {
		t.Errorf("gates %v", g)
	}
	if err := g.set("Nope"); err == nil || err.Error() != "missing bool value for Nope" {
		t.Errorf("err %v", err)
	}
	if err := g.set(" StopGRPCServiceOnDefrag = false "); err != nil || g.Enabled(GateStopGRPCServiceOnDefrag) {
		t.Errorf("trim: %v %v", err, g)
	}
}
