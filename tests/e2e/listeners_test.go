package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/tests/framework"
)

// https client URLs with client-certificate authentication: the official
// client works with a certificate and is refused without one.
func TestTLSClientListener(t *testing.T) {
	certs := framework.NewCerts(t, t.TempDir())
	m := framework.NewMember(t, framework.Cairn(t), "n1",
		"--cert-file", certs.ServerCert, "--key-file", certs.ServerKey,
		"--trusted-ca-file", certs.CA, "--client-cert-auth")
	m.Client = strings.Replace(m.Client, "http://", "https://", 1)
	m.Start()
	if !m.WaitLog("ready to serve client requests", 20*time.Second) {
		t.Fatalf("not ready:\n%s", m.Log())
	}
	dial := func(withCert bool) (*clientv3.Client, error) {
		return clientv3.New(clientv3.Config{
			Endpoints: []string{m.Client}, DialTimeout: 2 * time.Second,
			TLS: certs.ClientTLS(t, withCert), Logger: zap.NewNop(),
		})
	}
	c, err := dial(true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxT(t)
	if _, err := c.Put(ctx, "secure", "yes"); err != nil {
		t.Fatalf("put over TLS: %v", err)
	}
	if g, err := c.Get(ctx, "secure"); err != nil || string(g.Kvs[0].Value) != "yes" {
		t.Fatalf("get over TLS: %v %v", g, err)
	}
	// HTTP endpoints are served over the same TLS port.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: certs.ClientTLS(t, true)}, Timeout: 5 * time.Second}
	resp, err := hc.Get(m.Client + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"health":"true","reason":""}` {
		t.Fatalf("/health over TLS: %d %s", resp.StatusCode, body)
	}
	// Without a client certificate the handshake fails.
	nc, err := dial(false)
	if err == nil {
		defer nc.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := nc.Get(sctx, "secure"); err == nil {
			t.Fatal("a client without a certificate was served despite --client-cert-auth")
		}
	}
}

// unix socket client URLs serve gRPC like TCP ones.
func TestUnixSocketListener(t *testing.T) {
	// etcd's form: unix://<host>:<port> names a socket file of that name in
	// the working directory.
	dir := t.TempDir()
	name := fmt.Sprintf("localhost:%d", framework.FreePort(t, "127.0.0.1"))
	sock := filepath.Join(dir, name)
	m := framework.NewMember(t, framework.Cairn(t), "n1")
	m.Dir = dir
	m.ListenClient = "unix://" + name
	m.Start()
	if !m.WaitLog("ready to serve client requests", 20*time.Second) {
		t.Fatalf("not ready:\n%s", m.Log())
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no socket at %s: %v", sock, err)
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{"unix://" + sock}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Put(ctxT(t), "over", "unix"); err != nil {
		t.Fatalf("put over unix socket: %v", err)
	}
}

// The HTTP endpoints on the client port answer with etcd's bodies, and the
// metrics carry etcd's names.
func TestHTTPEndpoints(t *testing.T) {
	m := startCairn(t)
	get := func(path string) (int, string) {
		resp, err := http.Get(m.Client + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The cluster version is decided shortly after start.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get("/version")
		var v map[string]string
		if err := json.Unmarshal([]byte(body), &v); err != nil || code != 200 {
			t.Fatalf("/version: %d %s", code, body)
		}
		if v["etcdcluster"] == "3.6.0" {
			if v["etcdserver"] != "3.6.0" || v["storage"] != "3.6.0" {
				t.Fatalf("/version: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster version not decided: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := get("/health"); code != 200 || body != `{"health":"true","reason":""}` {
		t.Fatalf("/health: %d %s", code, body)
	}
	if code, body := get("/readyz?verbose"); code != 200 || !strings.Contains(body, "[+]linearizable_read ok") || !strings.HasSuffix(body, "ok\n") {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if code, body := get("/livez"); code != 200 || body != "ok\n" {
		t.Fatalf("/livez: %d %s", code, body)
	}
	c := m.Client3()
	defer c.Close()
	if _, err := c.Put(ctxT(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	_, metrics := get("/metrics")
	for _, name := range []string{
		"etcd_server_has_leader 1", "etcd_server_is_leader 1", "etcd_server_proposals_committed_total",
		"etcd_server_proposals_applied_total", "etcd_server_proposals_pending", "etcd_server_proposals_failed_total",
		"etcd_disk_wal_fsync_duration_seconds_bucket", "etcd_disk_backend_commit_duration_seconds_bucket",
		"etcd_mvcc_db_total_size_in_bytes", "etcd_mvcc_db_total_size_in_use_in_bytes", "etcd_debugging_mvcc_keys_total 1",
		`etcd_cluster_version{cluster_version="3.6.0"} 1`, `etcd_server_version{server_version="3.6.0"} 1`,
		"etcd_server_leader_changes_seen_total 1",
	} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %q", name)
		}
	}
}

// SIGTERM stops the member cleanly and the process dies of the signal, as
// etcd's does (exit status 143 in a shell).
func TestSIGTERMStopsCleanly(t *testing.T) {
	m := startCairn(t)
	m.Stop()
	err := m.ExitErr()
	ws, ok := exitStatus(err)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("exit: %v (want death by SIGTERM)\n%s", err, m.Log())
	}
	if !strings.Contains(m.Log(), `"received signal; shutting down"`) {
		t.Fatalf("no shutdown log line:\n%s", m.Log())
	}
}

// Flags cairn does not act on yet are refused at start, never ignored.
func TestUnsupportedFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--socket-reuse-port"}, "cairn does not support --socket-reuse-port yet"},
		{[]string{"--feature-gates", "SetMemberLocalAddr=true"}, "cairn does not support --feature-gates=SetMemberLocalAddr=true yet"},
		{[]string{"--auth-token", "jwt,pub-key=x"}, "cairn does not support --auth-token yet"},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"--data-dir", filepath.Join(dir, "d")}, tc.args...)
			_, stderr, code := framework.Run(t, nil, "", framework.Cairn(t), args...)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "d")); err == nil {
				t.Fatalf("a refused start created the data dir")
			}
		})
	}
}

func exitStatus(err error) (syscall.WaitStatus, bool) {
	type sysErr interface{ Sys() any }
	var ws syscall.WaitStatus
	if err == nil {
		return ws, false
	}
	if e, ok := err.(interface{ ExitCode() int }); ok {
		_ = e
	}
	if ee, ok := err.(sysErr); ok {
		ws, ok = ee.Sys().(syscall.WaitStatus)
		return ws, ok
	}
	return ws, false
}

// --listen-metrics-urls serves /metrics and the health endpoints on a port
// of their own.
func TestMetricsListener(t *testing.T) {
	metrics := fmt.Sprintf("http://127.0.0.1:%d", framework.FreePort(t, "127.0.0.1"))
	m := framework.NewMember(t, framework.Cairn(t), "n1", "--listen-metrics-urls", metrics)
	m.StartAndWait(20 * time.Second)
	for path, want := range map[string]string{"/metrics": "etcd_server_has_leader 1", "/health": `{"health":"true","reason":""}`} {
		resp, err := http.Get(metrics + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("%s on the metrics URL: %d %.200s", path, resp.StatusCode, b)
		}
	}
}

// With --listen-client-http-urls the HTTP endpoints move to their own
// listener and the client URLs serve gRPC only, as etcd does.
func TestClientHTTPListener(t *testing.T) {
	httpURL := fmt.Sprintf("http://127.0.0.1:%d", framework.FreePort(t, "127.0.0.1"))
	m := framework.NewMember(t, framework.Cairn(t), "n1", "--listen-client-http-urls", httpURL)
	m.StartAndWait(20 * time.Second) // gRPC on the client URL
	resp, err := http.Get(httpURL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != `{"health":"true","reason":""}` {
		t.Fatalf("/health on the client HTTP URL: %d %s", resp.StatusCode, b)
	}
	if resp, err := http.Get(m.Client + "/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("/health still served on the gRPC-only client URL")
		}
	}
	// The same URL for both is refused at start.
	same := framework.NewMember(t, framework.Cairn(t), "n2")
	same.Extra = []string{"--listen-client-http-urls", same.Client}
	same.Start()
	select {
	case <-same.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("member started with the same URL for gRPC and HTTP:\n%s", same.Log())
	}
	if !strings.Contains(same.Log(), "cannot bind both --listen-client-urls and --listen-client-http-urls on the same url") {
		t.Fatalf("same URL for gRPC and HTTP not refused:\n%s", same.Log())
	}
}
