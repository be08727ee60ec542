package config

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tests/refs"
	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// diffCase is one bad configuration run through both etcd 3.6.16 and Load.
type diffCase struct {
	name string
	args []string
	env  []string
	// bare omits the base listen/advertise flags (the case tests them).
	bare bool
	// file, when set, is written to <tmp>/etcd.yaml; "$FILE" in args and
	// env is replaced by its path.
	file string
	// code and want are the expected exit code and summarized text (see
	// summarize), checked against etcd 3.6.16.
	code int
	want string
	// knownDiff explains a text cairn cannot reproduce; only the exit code
	// is compared with etcd then.
	knownDiff string
}

var diffCases = []diffCase{
	// A.1 syntax (exit 2)
	{name: "triple dash", args: []string{"---name=x"}, code: 2, want: "bad flag syntax: ---name=x"},
	{name: "unknown flag", args: []string{"--nonexistent"}, code: 2, want: "flag provided but not defined: -nonexistent"},
	{name: "unknown single dash", args: []string{"-nope=1"}, code: 2, want: "flag provided but not defined: -nope"},
	{name: "removed proxy flag", args: []string{"--proxy=on"}, code: 2, want: "flag provided but not defined: -proxy"},
	{name: "removed debug flag", args: []string{"--debug"}, code: 2, want: "flag provided but not defined: -debug"},
	{name: "removed experimental-max-learners", args: []string{"--experimental-max-learners=2"}, code: 2, want: "flag provided but not defined: -experimental-max-learners"},
	{name: "bad uint", args: []string{"--heartbeat-interval=abc"}, code: 2, want: "invalid value \"abc\" for flag -heartbeat-interval: parse error"},
	{name: "negative uint", args: []string{"--snapshot-count=-1"}, code: 2, want: "invalid value \"-1\" for flag -snapshot-count: parse error"},
	{name: "uint out of range", args: []string{"--election-timeout=99999999999999999999999"}, code: 2, want: "invalid value \"99999999999999999999999\" for flag -election-timeout: value out of range"},
	{name: "bad duration", args: []string{"--grpc-keepalive-min-time=10"}, code: 2, want: "invalid value \"10\" for flag -grpc-keepalive-min-time: parse error"},
	{name: "bad bool", args: []string{"--pre-vote=maybe"}, code: 2, want: "invalid boolean value \"maybe\" for -pre-vote: parse error"},
	{name: "bad cluster state", args: []string{"--initial-cluster-state=bogus"}, code: 2, want: "invalid value \"bogus\" for flag -initial-cluster-state: invalid value"},
	{name: "bad fallback", args: []string{"--discovery-fallback=bogus"}, code: 2, want: "invalid value \"bogus\" for flag -discovery-fallback: invalid value"},
	{name: "bad url scheme", args: []string{"--listen-peer-urls=ftp://127.0.0.1:1"}, bare: true, code: 2, want: "invalid value \"ftp://127.0.0.1:1\" for flag -listen-peer-urls: URL scheme must be http, https, unix, or unixs: ftp://127.0.0.1:1"},
	{name: "url without port", args: []string{"--listen-client-urls=http://127.0.0.1"}, bare: true, code: 2, want: "invalid value \"http://127.0.0.1\" for flag -listen-client-urls: URL address does not have the form \"host:port\": http://127.0.0.1"},
	{name: "url with path", args: []string{"--advertise-client-urls=http://127.0.0.1:1/p"}, bare: true, code: 2, want: "invalid value \"http://127.0.0.1:1/p\" for flag -advertise-client-urls: URL must not contain a path: http://127.0.0.1:1/p"},
	{name: "bad cors", args: []string{"--cors=foo"}, code: 2, want: "invalid value \"foo\" for flag -cors: URL scheme must be http, https, unix, or unixs: foo"},
	{name: "unknown gate", args: []string{"--feature-gates=Bogus=true"}, code: 2, want: "invalid value \"Bogus=true\" for flag -feature-gates: unrecognized feature gate: Bogus"},
	{name: "bad gate bool", args: []string{"--feature-gates=LeaseCheckpoint=maybe"}, code: 2, want: "invalid value \"LeaseCheckpoint=maybe\" for flag -feature-gates: invalid value of LeaseCheckpoint=maybe, err: strconv.ParseBool: parsing \"maybe\": invalid syntax"},
	{name: "v2 deprecation not-yet", args: []string{"--v2-deprecation=not-yet"}, code: 2, want: "invalid value \"not-yet\" for flag -v2-deprecation: invalid value \"not-yet\""},
	{name: "bad max streams", args: []string{"--max-concurrent-streams=x"}, code: 2, want: "invalid value \"x\" for flag -max-concurrent-streams: strconv.ParseUint: parsing \"x\": invalid syntax"},
	{name: "log level panics", args: []string{"--log-level=verbose"}, code: 2, want: "panic: unrecognized level: \"verbose\""},

	// A.1 positional arguments (exit 1)
	{name: "positional", args: []string{"extra"}, code: 1, want: "verify: \"extra\" is not a valid flag"},
	{name: "bool takes no value", args: []string{"--pre-vote", "false"}, code: 1, want: "verify: \"false\" is not a valid flag"},
	{name: "legacy flag takes no value", args: []string{"--snapshot", "x"}, code: 1, want: "verify: \"x\" is not a valid flag"},
	{name: "gateway not first", args: []string{"--name=a", "gateway"}, code: 1, want: "verify: \"gateway\" is not a valid flag"},
	{name: "version then positional", args: []string{"--version", "extra"}, code: 1, want: "verify: \"extra\" is not a valid flag"},
	{name: "version then unknown flag", args: []string{"--version", "--nonsense"}, code: 2, want: "flag provided but not defined: -nonsense"},
	{name: "stops at first non-flag", args: []string{"x", "--nonexistent"}, code: 1, want: "verify: \"x\" is not a valid flag"},

	// A.4/A.5 verification (exit 1)
	{name: "fallback proxy", args: []string{"--discovery-fallback=proxy", "--election-timeout=0"}, code: 1, want: "verify: v2 proxy is deprecated, and --discovery-fallback can't be configured as \"proxy\""},
	{name: "heartbeat zero", args: []string{"--heartbeat-interval=0"}, code: 1, want: "verify: --heartbeat-interval must be >0 (set to 0ms)"},
	{name: "election zero", args: []string{"--election-timeout=0"}, code: 1, want: "verify: --election-timeout must be >0 (set to 0ms)"},
	{name: "election below 5x", args: []string{"--heartbeat-interval=300"}, code: 1, want: "verify: --election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]"},
	{name: "election too long", args: []string{"--election-timeout=50001"}, code: 1, want: "verify: --election-timeout[50001ms] is too long, and should be set less than 50000ms"},
	{name: "listen client without advertise", args: []string{"--listen-client-urls=http://127.0.0.1:1"}, bare: true, code: 1, want: "verify: --advertise-client-urls is required when --listen-client-urls is set explicitly"},
	{name: "hostname bind", args: []string{"--listen-peer-urls=http://example.com:2380"}, bare: true, code: 1, want: "verify: expected IP in URL for binding (http://example.com:2380)"},
	{name: "metrics hostname bind", args: []string{"--listen-metrics-urls=http://example.com:2381"}, code: 1, want: "verify: expected IP in URL for binding (http://example.com:2381)"},
	{name: "empty advertise peer host", args: []string{"--initial-advertise-peer-urls=http://:2380,http://127.0.0.1:2380"}, code: 1, want: "verify: --initial-advertise-peer-urls \"http://127.0.0.1:2380,http://:2380\" must be \"host:port\" (unexpected empty host (http://:2380))"},
	{name: "empty advertise client host", args: []string{"--advertise-client-urls=http://:2379"}, bare: true, code: 1, want: "verify: --advertise-client-urls \"http://:2379\" must be \"host:port\" (unexpected empty host (http://:2379))"},
	{name: "two bootstraps", args: []string{"--discovery=http://127.0.0.1:1/x", "--initial-cluster=a=http://127.0.0.1:1"}, code: 1, want: "verify: multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\", \"discovery-endpoints\" or \"discovery-srv\""},
	{name: "v2 and v3 discovery", args: []string{"--discovery-proxy=http://127.0.0.1:1", "--discovery-token=x"}, code: 1, want: "verify: both v2 discovery settings (discovery, discovery-proxy) and v3 discovery settings (discovery-token, discovery-endpoints, discovery-cert, discovery-key, discovery-cacert, discovery-user, discovery-password) are set"},
	{name: "token without endpoints", args: []string{"--discovery-token=x"}, code: 1, want: "verify: both --discovery-token and --discovery-endpoints must be set"},
	{name: "empty endpoints", args: []string{"--discovery-endpoints=127.0.0.1:1,", "--discovery-token=t"}, code: 1, want: "verify: --discovery-endpoints must not contain empty endpoints"},
	{name: "bad compaction mode", args: []string{"--auto-compaction-mode=hourly"}, code: 1, want: "verify: unknown auto-compaction-mode \"hourly\""},
	{name: "empty compaction mode", args: []string{"--auto-compaction-mode="}, code: 1, want: "verify: undefined auto-compaction-mode"},
	{name: "persist without checkpoint gate", args: []string{"--feature-gates=LeaseCheckpointPersist=true"}, code: 1, want: "verify: enabling feature gate LeaseCheckpointPersist requires enabling feature gate LeaseCheckpoint"},
	{name: "persist without checkpoint flag", args: []string{"--experimental-enable-lease-checkpoint-persist"}, code: 1, want: "verify: enabling feature gate LeaseCheckpointPersist requires enabling feature gate LeaseCheckpoint"},
	{name: "compact hash time zero", args: []string{"--compact-hash-check-time=0"}, code: 1, want: "verify: --compact-hash-check-time must be >0 (set to 0s)"},
	{name: "experimental compact hash time negative", args: []string{"--experimental-compact-hash-check-time=-1s"}, code: 1, want: "verify: --experimental-compact-hash-check-time must be >0 (set to -1s)"},
	{name: "tls version", args: []string{"--tls-min-version=TLS1.1"}, code: 1, want: "verify: unexpected TLS version \"TLS1.1\" (must be one of: TLS1.2, TLS1.3)"},
	{name: "tls max version", args: []string{"--tls-max-version=TLS1.4"}, code: 1, want: "verify: unexpected TLS version \"TLS1.4\" (must be one of: TLS1.2, TLS1.3)"},
	{name: "tls min above max", args: []string{"--tls-min-version=TLS1.3", "--tls-max-version=TLS1.2"}, code: 1, want: "verify: min version (TLS1.3) is greater than max version (TLS1.2)"},
	{name: "ciphers with tls1.3", args: []string{"--tls-min-version=TLS1.3", "--cipher-suites=TLS_AES_128_GCM_SHA256"}, code: 1, want: "verify: cipher suites cannot be configured when only TLS1.3 is enabled"},
	{name: "old and new names", args: []string{"--experimental-corrupt-check-time=1s", "--corrupt-check-time=1s"}, code: 1, want: "verify: cannot set --experimental-corrupt-check-time and --corrupt-check-time at the same time, please use --corrupt-check-time only"},
	{name: "unary pair wins over others", args: []string{"--warning-unary-request-duration=1s", "--experimental-warning-unary-request-duration=2s", "--election-timeout=0"}, code: 1, want: "verify: both --experimental-warning-unary-request-duration and --warning-unary-request-duration flags are set. Use only --warning-unary-request-duration"},
	{name: "experimental bool and gate", args: []string{"--experimental-initial-corrupt-check=true", "--feature-gates=InitialCorruptCheck=true"}, code: 1, want: "verify: cannot specify both flags: --experimental-initial-corrupt-check=true and --feature-gates=InitialCorruptCheck=true at the same time, please just use --feature-gates=InitialCorruptCheck=true"},
	{name: "gate substring quirk", args: []string{"--experimental-enable-lease-checkpoint=true", "--feature-gates=LeaseCheckpointPersist=true"}, code: 1, want: "verify: cannot specify both flags: --experimental-enable-lease-checkpoint=true and --feature-gates=LeaseCheckpoint=false at the same time, please just use --feature-gates=LeaseCheckpoint=false"},
	{name: "AllAlpha names every alpha gate", args: []string{"--feature-gates=AllAlpha=true", "--experimental-stop-grpc-service-on-defrag=false"}, code: 1, want: "verify: cannot specify both flags: --experimental-stop-grpc-service-on-defrag=false and --feature-gates=StopGRPCServiceOnDefrag=true at the same time, please just use --feature-gates=StopGRPCServiceOnDefrag=true"},
	{name: "capnslog", args: []string{"--logger=capnslog"}, code: 1, want: "verify: --logger=capnslog is removed in v3.5"},
	{name: "unknown logger", args: []string{"--logger=foo"}, code: 1, want: "verify: unknown logger option \"foo\""},
	{name: "default plus another output", args: []string{"--log-outputs=default,stderr"}, code: 1, want: "verify: multi logoutput for \"default\" is not supported yet"},
	{name: "bad log format", args: []string{"--log-format=xml"}, code: 1, want: "verify: unknown log format: xml, supported values json, console"},
	{name: "rotation without file", args: []string{"--enable-log-rotation"}, code: 1, want: "verify: --log-outputs requires a single file path when --log-rotate-config-json is defined"},
	{name: "log output unopenable", args: []string{"--log-outputs=/nonexistent-dir/x.log"}, code: 1, want: "verify: open sink \"/nonexistent-dir/x.log\": open /nonexistent-dir/x.log: no such file or directory"},
	{name: "tracing sampling rate", args: []string{"--enable-distributed-tracing", "--distributed-tracing-sampling-rate=-1"}, code: 1, want: "verify: distributed tracing configurition is not valid: (tracing sampling rate must be positive)"},
	{name: "logging error before bind check", args: []string{"--log-format=xml", "--listen-metrics-urls=http://example.com:1"}, code: 1, want: "verify: unknown log format: xml, supported values json, console"},

	// A.2 environment
	{name: "env bad uint", env: []string{"ETCD_HEARTBEAT_INTERVAL=abc"}, code: 1, want: "verify: invalid value \"abc\" for ETCD_HEARTBEAT_INTERVAL: parse error"},
	{name: "env bad bool", env: []string{"ETCD_PRE_VOTE=maybe"}, code: 1, want: "verify: invalid value \"maybe\" for ETCD_PRE_VOTE: parse error"},
	{name: "env bad cluster state", env: []string{"ETCD_INITIAL_CLUSTER_STATE=bogus"}, code: 1, want: "verify: invalid value \"bogus\" for ETCD_INITIAL_CLUSTER_STATE: invalid value"},
	{name: "env unknown gate", env: []string{"ETCD_FEATURE_GATES=Bogus=true"}, code: 1, want: "verify: invalid value \"Bogus=true\" for ETCD_FEATURE_GATES: unrecognized feature gate: Bogus"},
	{name: "env last bad value wins", env: []string{"ETCD_SNAPSHOT_COUNT=y", "ETCD_HEARTBEAT_INTERVAL=x"}, code: 1, want: "verify: invalid value \"y\" for ETCD_SNAPSHOT_COUNT: parse error"},
	{name: "env shadowed", args: []string{"--name=y"}, env: []string{"ETCD_NAME=x"}, code: 1, want: "fatal: conflicting environment variable is shadowed by corresponding command-line flag (either unset environment variable or disable flag)) [ETCD_NAME]"},
	{name: "env shadowed even empty", args: []string{"--name=y", "--election-timeout=0"}, env: []string{"ETCD_NAME="}, code: 1, want: "fatal: conflicting environment variable is shadowed by corresponding command-line flag (either unset environment variable or disable flag)) [ETCD_NAME]"},
	{name: "env shadow beats bad value", args: []string{"--name=y"}, env: []string{"ETCD_HEARTBEAT_INTERVAL=x", "ETCD_NAME=x"}, code: 1, want: "fatal: conflicting environment variable is shadowed by corresponding command-line flag (either unset environment variable or disable flag)) [ETCD_NAME]"},
	{name: "env listen client counts as explicit", env: []string{"ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:1"}, bare: true, code: 1, want: "verify: --advertise-client-urls is required when --listen-client-urls is set explicitly"},
	{name: "env unrecognized only warns", env: []string{"ETCD_BOGUS=1", "ETCD_ELECTION_TIMEOUT=1"}, code: 1, want: "verify: --election-timeout[1ms] should be at least as 5 times as --heartbeat-interval[100ms]"},
	{name: "env version is not --version", env: []string{"ETCD_VERSION=1", "ETCD_ELECTION_TIMEOUT=0"}, code: 1, want: "verify: --election-timeout must be >0 (set to 0ms)"},
	{name: "env fallback proxy", env: []string{"ETCD_DISCOVERY_FALLBACK=proxy"}, code: 1, want: "verify: v2 proxy is deprecated, and --discovery-fallback can't be configured as \"proxy\""},
	{name: "env old and new names", args: []string{"--corrupt-check-time=1s"}, env: []string{"ETCD_EXPERIMENTAL_CORRUPT_CHECK_TIME=1s"}, code: 1, want: "verify: cannot set --experimental-corrupt-check-time and --corrupt-check-time at the same time, please use --corrupt-check-time only"},
	{name: "env bad value then unary pair", env: []string{"ETCD_HEARTBEAT_INTERVAL=x", "ETCD_WARNING_UNARY_REQUEST_DURATION=1s", "ETCD_EXPERIMENTAL_WARNING_UNARY_REQUEST_DURATION=1s"}, code: 1, want: "verify: both --experimental-warning-unary-request-duration and --warning-unary-request-duration flags are set. Use only --warning-unary-request-duration"},

	// A.3 config file
	{name: "file missing", args: []string{"--config-file=/nonexistent/etcd.yaml"}, code: 1, want: "verify: open /nonexistent/etcd.yaml: no such file or directory"},
	{name: "file from env missing", env: []string{"ETCD_CONFIG_FILE=/nonexistent/etcd.yaml"}, code: 1, want: "verify: open /nonexistent/etcd.yaml: no such file or directory"},
	{name: "file still parses flags", args: []string{"--config-file=/nonexistent/etcd.yaml", "--nonexistent"}, code: 2, want: "flag provided but not defined: -nonexistent"},
	{name: "file ignores env", args: []string{"--config-file=/nonexistent/etcd.yaml"}, env: []string{"ETCD_HEARTBEAT_INTERVAL=x", "ETCD_CONFIG_FILE=/other"}, code: 1, want: "verify: open /nonexistent/etcd.yaml: no such file or directory"},
	{name: "file bad yaml", args: []string{"--config-file=$FILE"}, file: "name: [x\n", code: 1, want: "verify: error converting YAML to JSON: yaml: line 1: did not find expected ',' or ']'"},
	{name: "file duration string", args: []string{"--config-file=$FILE"}, file: "grpc-keepalive-min-time: 10s\n", code: 1, want: "verify: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field configYAML.Config.grpc-keepalive-min-time of type time.Duration"},
	{name: "file yaml 1.1 bool", args: []string{"--config-file=$FILE"}, file: "name: y\n", code: 1, want: "verify: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal bool into Go struct field configYAML.Config.name of type string"},
	{name: "file bad listen url", args: []string{"--config-file=$FILE"}, file: "listen-peer-urls: ftp://127.0.0.1:1\n", code: 1, want: "plain: unexpected error setting up listen-peer-urls: URL scheme must be http, https, unix, or unixs: ftp://127.0.0.1:1"},
	{name: "file bad advertise url", args: []string{"--config-file=$FILE"}, file: "advertise-client-urls: http://127.0.0.1\n", code: 1, want: "plain: unexpected error setting up advertise-peer-urls: URL address does not have the form \"host:port\": http://127.0.0.1"},
	{name: "file election zero", args: []string{"--config-file=$FILE"}, file: "election-timeout: 0\n", code: 1, want: "verify: --election-timeout must be >0 (set to 0ms)"},
	{name: "file unknown gate", args: []string{"--config-file=$FILE"}, file: "feature-gates: Bogus=true\n", code: 1, want: "verify: unrecognized feature gate: Bogus"},
	{name: "file gate clash", args: []string{"--config-file=$FILE"}, file: "feature-gates: InitialCorruptCheck=true\nexperimental-initial-corrupt-check: true\n", code: 1, want: "verify: cannot specify both flags: --experimental-initial-corrupt-check=true and --feature-gates=InitialCorruptCheck=true at the same time, please just use --feature-gates=InitialCorruptCheck=true"},
	{name: "file old and new names", args: []string{"--config-file=$FILE"}, file: "experimental-warning-apply-duration: 1000\nwarning-apply-duration: 1000\n", code: 1, want: "verify: cannot set --experimental-warning-apply-duration and --warning-apply-duration at the same time, please use --warning-apply-duration only"},
	{name: "file cluster state", args: []string{"--config-file=$FILE"}, file: "initial-cluster-state: bogus\n", code: 1, want: "verify: unexpected clusterState \"bogus\""},
	{name: "file discovery clears default cluster", args: []string{"--config-file=$FILE"}, file: "discovery: http://127.0.0.1:1/x\nelection-timeout: 0\n", code: 1, want: "verify: --election-timeout must be >0 (set to 0ms)"},
	{name: "file peer tls not a map", args: []string{"--config-file=$FILE"}, file: "peer-transport-security: 1\n", knownDiff: "Go type errors name the package: etcd's embed.securityConfig vs config.securityConfig", code: 1, want: "verify: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number into Go struct field configYAML.configJSON.peer-transport-security of type config.securityConfig"},
}

// outcome is what a run is compared on.
type outcome struct {
	code int
	text string
}

// prepare builds the argument list and environment of tc in a temp dir.
func prepare(t *testing.T, tc diffCase) (args, env []string, dir string) {
	dir = t.TempDir()
	args = append([]string{"--data-dir", filepath.Join(dir, "data")}, baseArgs(t, tc.bare)...)
	args = append(args, tc.args...)
	env = append([]string(nil), tc.env...)
	if tc.file != "" {
		path := filepath.Join(dir, "etcd.yaml")
		if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
			t.Fatal(err)
		}
		for i := range args {
			args[i] = strings.ReplaceAll(args[i], "$FILE", path)
		}
		for i := range env {
			env[i] = strings.ReplaceAll(env[i], "$FILE", path)
		}
	}
	return args, env, dir
}

// TestLoadRejects checks each bad configuration's exit code and text (A.1-A.5).
func TestLoadRejects(t *testing.T) {
	for _, tc := range diffCases {
		t.Run(tc.name, func(t *testing.T) {
			args, env, dir := prepare(t, tc)
			got, _ := runLoad(args, env)
			got.text = strings.ReplaceAll(got.text, dir, "$TMP")
			if want := (outcome{tc.code, tc.want}); got != want {
				t.Errorf("args %q env %q:\n got:  %d %s\n want: %d %s", tc.args, tc.env, got.code, got.text, want.code, want.text)
			}
		})
	}
}

// TestDifferentialEtcd runs every bad configuration through etcd 3.6.16 and
// Load and compares exit code and error text.
func TestDifferentialEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the reference etcd binary")
	}
	etcd := refs.EtcdRelease(t, refs.Default).Etcd
	for _, tc := range diffCases {
		t.Run(tc.name, func(t *testing.T) {
			args, env, _ := prepare(t, tc)
			want, wantLog := runEtcd(t, etcd, args, env)
			got, gotLog := runLoad(args, env)
			if w, g := logSeq(wantLog), logSeq(gotLog); w != g && tc.knownDiff == "" {
				t.Errorf("log lines differ:\n etcd:\n%s\n cairn:\n%s", w, g)
			}
			if tc.knownDiff != "" {
				t.Logf("known difference: %s", tc.knownDiff)
				got.text, want.text = "", ""
			}
			if got != want {
				t.Errorf("args %q env %q:\n etcd:  %d %s\n cairn: %d %s", tc.args, tc.env, want.code, want.text, got.code, got.text)
			}
		})
	}
}

// TestDifferentialHelpVersion compares --help and --version with etcd's:
// help differs only by cairn's --enable-v2 entry, version by its last line.
func TestDifferentialHelpVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the reference etcd binary")
	}
	etcd := refs.EtcdRelease(t, refs.Default).Etcd
	run := func(arg string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(etcd, arg)
		cmd.Env = []string{}
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		_ = cmd.Run()
		return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
	}
	for _, arg := range []string{"--help", "-h", "-help"} {
		eout, eerr, ecode := run(arg)
		var out, errb bytes.Buffer
		_, err := Load([]string{"cairn", arg}, nil, &out, &errb)
		assertExit(t, err, ecode)
		var kept []string
		lines := strings.SplitAfter(out.String(), "\n")
		for i := 0; i < len(lines); i++ {
			if strings.HasPrefix(lines[i], "  --enable-v2 ") {
				i++ // and its description
				continue
			}
			kept = append(kept, lines[i])
		}
		if strings.Join(kept, "") != eout || errb.String() != eerr {
			t.Errorf("%s output differs from etcd's", arg)
		}
	}
	eout, _, ecode := run("--version")
	var out bytes.Buffer
	_, err := Load([]string{"cairn", "--version", "--nonsense-is-not-reached"}, nil, &out, io.Discard)
	if ecode != 0 {
		t.Fatalf("etcd --version exit %d", ecode)
	}
	// Flags after --version are still parsed, so an unknown one fails first.
	assertExit(t, err, 2)
	out.Reset()
	_, err = Load([]string{"cairn", "--election-timeout=0", "--version"}, nil, &out, io.Discard)
	assertExit(t, err, 0)
	el, cl := strings.Split(eout, "\n"), strings.Split(out.String(), "\n")
	if el[0] != cl[0] || el[2] != cl[2] || el[3] != cl[3] || cl[4] != "cairn Version: "+CairnVersion {
		t.Errorf("version:\n%s\nvs etcd:\n%s", out.String(), eout)
	}
}

// baseArgs are loopback listeners on free ports, so that a run that gets
// past validation cannot touch the default ports.
func baseArgs(t *testing.T, bare bool) []string {
	if bare {
		return nil
	}
	peer, client := freeURL(t), freeURL(t)
	return []string{"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--listen-client-urls", client, "--advertise-client-urls", client}
}

func freeURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// startedMsgs are log messages etcd writes only after validation passed.
var startedMsgs = map[string]bool{
	"Initialize and start etcd server": true, "server has already been initialized": true,
	"configuring peer listeners": true, "starting an etcd server": true,
}

// runEtcd runs etcd with only env as its environment, killing it as soon as
// it logs that it is starting, or at a deadline.
func runEtcd(t *testing.T, bin string, args, env []string) (outcome, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	started := false
	for sc.Scan() {
		line := sc.Text()
		buf.WriteString(line + "\n")
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && startedMsgs[fmt.Sprint(rec["msg"])] {
			started = true
			_ = cmd.Process.Kill()
			break
		}
	}
	_ = cmd.Wait()
	if started {
		return outcome{code: -1, text: "started"}, buf.String()
	}
	if ctx.Err() != nil {
		t.Fatalf("etcd did not exit before the deadline:\n%s", buf.String())
	}
	return summarize(cmd.ProcessState.ExitCode(), buf.String()), buf.String()
}

// runLoad runs Load and renders its logs as etcd's would be.
func runLoad(args, env []string) (outcome, string) {
	var stdout, stderr bytes.Buffer
	_, err := Load(append([]string{"etcd"}, args...), env, &stdout, &stderr)
	if err == nil {
		return outcome{code: -1, text: "started"}, ""
	}
	var ee *ExitError
	if !errors.As(err, &ee) {
		return outcome{code: -2, text: err.Error()}, ""
	}
	lg := testLogger(&stderr)
	WriteLogs(lg, lg, ee.Logs)
	return summarize(ee.Code, stderr.String()), stderr.String()
}

// testLogger writes etcd-shaped JSON to w; fatal records do not exit.
func testLogger(w *bytes.Buffer) *zap.Logger {
	core := zapcore.NewCore(zapcore.NewJSONEncoder(logutil.DefaultZapLoggerConfig.EncoderConfig), zapcore.AddSync(w), zapcore.DebugLevel)
	return zap.New(core, zap.WithFatalHook(noopHook{}))
}

type noopHook struct{}

func (noopHook) OnWrite(*zapcore.CheckedEntry, []zapcore.Field) {}

// logSeq lists the JSON log lines of stderr as "level msg", dropping the
// "Running: " arguments (etcd's include the binary path).
func logSeq(stderr string) string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			out = append(out, fmt.Sprintf("%v %v", rec["level"], rec["msg"]))
		}
	}
	return strings.Join(out, "\n")
}

// summarize reduces stderr to the line that matters: the first line for exit
// 2, else the "failed to verify flags" error, a fatal record, or the first
// non-JSON line.
func summarize(code int, stderr string) outcome {
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if code == 2 {
		return outcome{code, lines[0]}
	}
	plain := ""
	for _, line := range lines {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			if plain == "" {
				plain = "plain: " + line
			}
			continue
		}
		if rec["msg"] == "failed to verify flags" {
			return outcome{code, "verify: " + fmt.Sprint(rec["error"])}
		}
		if rec["level"] == "fatal" {
			return outcome{code, fmt.Sprintf("fatal: %s [%v]", rec["msg"], rec["environment-variable"])}
		}
	}
	return outcome{code, plain}
}
