// Package testserver stands in for k8s.io/apiserver/pkg/storage/etcd3/testserver
// when Kubernetes' storage tests run against a real server process.
//
// Kubernetes' storage tests (the etcd3 store, the watch cache, the storage
// factory, the generic registry) get every etcd server they use from
// testserver.RunEtcd, which in Kubernetes starts an embedded etcd. The driver
// in tests/k8s compiles those test packages with this file in place of the
// original (go test -overlay), so each RunEtcd starts a separate server
// process instead: the binary named by $CAIRN_K8S_SERVER (a cairn build, or the
// reference etcd 3.6.16 the results are compared with), one single-member
// cluster per call on 127.0.0.1, killed when the test ends.
//
// The API is the original's: NewTestConfig returns an *embed.Config that the
// tests may adjust, and RunEtcd turns the fields Kubernetes' tests set into
// the server's command-line flags (see flagsFor); a field it cannot express
// fails the test instead of being ignored.
package testserver

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/cairnkv/cairn/tests/framework"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
)

// ServerEnv names the environment variable holding the server binary's path.
const ServerEnv = "CAIRN_K8S_SERVER"

// readyTimeout bounds a server's start, generously: the machine may be busy.
const readyTimeout = 60 * time.Second

// NewTestConfig returns the configuration RunEtcd starts a server with when
// given nil: embed.NewConfig() with free ports on 127.0.0.1 and a data dir
// under the test's temp dir. Tests may change it before passing it to
// RunEtcd. Unlike Kubernetes' own, it leaves fsync on: cairn does not offer
// --unsafe-no-fsync, and both servers are run alike.
func NewTestConfig(t testing.TB) *embed.Config {
	cfg := embed.NewConfig()
	client := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(framework.FreePort(t, "127.0.0.1")))}
	peer := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(framework.FreePort(t, "127.0.0.1")))}
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.Dir = t.TempDir()
	return cfg
}

// RunEtcd starts a server process configured by cfg (NewTestConfig(t) when
// nil), waits until it serves a read, and returns a client for it whose KV
// and Kubernetes interfaces record calls, as the original does. The process
// is killed when the test ends.
func RunEtcd(t testing.TB, cfg *embed.Config) *kubernetes.Client {
	t.Helper()
	bin := os.Getenv(ServerEnv)
	if bin == "" {
		t.Fatalf("%s is not set: these tests run against a server binary (see tests/k8s)", ServerEnv)
	}
	if cfg == nil {
		cfg = NewTestConfig(t)
	}
	args, err := flagsFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := framework.NewMember(t, bin, cfg.Name)
	m.OverrideArgs = args
	m.Start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log (%s):\n%s", m.LogPath, tail(m.Log(), 40))
		}
	})

	tlsConfig, err := cfg.ClientTLSInfo.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	var endpoints []string
	for _, u := range cfg.AdvertiseClientUrls {
		endpoints = append(endpoints, u.String())
	}
	client, err := kubernetes.New(clientv3.Config{
		TLS:         tlsConfig,
		Endpoints:   endpoints,
		DialTimeout: 10 * time.Second,
		Logger:      zaptest.NewLogger(t, zaptest.Level(zapcore.ErrorLevel)).Named("etcd-client"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	waitReady(t, m, client)
	client.KV = storagetesting.NewKVRecorder(client.KV)
	client.Kubernetes = storagetesting.NewKubernetesRecorder(client.Kubernetes)
	return client
}

// waitReady polls a linearizable read until it succeeds, the process exits,
// or readyTimeout passes.
func waitReady(t testing.TB, m *framework.Member, c *kubernetes.Client) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Client.Get(ctx, "health")
		cancel()
		if err == nil {
			return
		}
		select {
		case <-m.Done():
			t.Fatalf("server exited before serving: %v\n%s", m.ExitErr(), tail(m.Log(), 40))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready after %v: %v\n%s", readyTimeout, err, tail(m.Log(), 40))
		}
	}
}

// flagsFor translates the embed.Config fields Kubernetes' storage tests use
// into the flags cairn and etcd share. Anything else those tests might set is
// refused rather than dropped.
func flagsFor(cfg *embed.Config) ([]string, error) {
	def := embed.NewConfig()
	args := []string{
		"--name", cfg.Name,
		"--data-dir", cfg.Dir,
		"--listen-client-urls", joinURLs(cfg.ListenClientUrls),
		"--advertise-client-urls", joinURLs(cfg.AdvertiseClientUrls),
		"--listen-peer-urls", joinURLs(cfg.ListenPeerUrls),
		"--initial-advertise-peer-urls", joinURLs(cfg.AdvertisePeerUrls),
		"--initial-cluster", cfg.InitialCluster,
		"--log-level", "warn",
	}
	if cfg.UnsafeNoFsync {
		args = append(args, "--unsafe-no-fsync")
	}
	if cfg.WatchProgressNotifyInterval != def.WatchProgressNotifyInterval {
		args = append(args, "--watch-progress-notify-interval", cfg.WatchProgressNotifyInterval.String())
	}
	tls := cfg.ClientTLSInfo
	if tls.CertFile != "" {
		args = append(args, "--cert-file", tls.CertFile, "--key-file", tls.KeyFile)
	}
	if tls.TrustedCAFile != "" {
		args = append(args, "--trusted-ca-file", tls.TrustedCAFile)
	}
	if tls.ClientCertAuth {
		args = append(args, "--client-cert-auth")
	}
	switch {
	case cfg.SnapshotCount != def.SnapshotCount,
		cfg.TickMs != def.TickMs, cfg.ElectionMs != def.ElectionMs,
		cfg.QuotaBackendBytes != def.QuotaBackendBytes,
		cfg.MaxRequestBytes != def.MaxRequestBytes,
		cfg.AuthToken != def.AuthToken,
		cfg.PeerTLSInfo.CertFile != "",
		len(cfg.ListenClientHttpUrls) != 0:
		return nil, fmt.Errorf("testserver: this embed.Config sets a field the process launcher does not translate into flags")
	}
	return args, nil
}

func joinURLs(us []url.URL) string {
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = u.String()
	}
	return strings.Join(s, ",")
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
