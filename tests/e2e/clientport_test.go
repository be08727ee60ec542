package e2e

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tests/framework"
)

// request is one HTTP request of a differential test.
type request struct{ method, path string }

// clientPortRequests cover every endpoint of the client port, a path that
// does not exist and methods that are not allowed.
var clientPortRequests = []request{
	{http.MethodGet, "/version"}, {http.MethodGet, "/health"}, {http.MethodGet, "/health?serializable=true"},
	{http.MethodGet, "/livez"}, {http.MethodGet, "/livez?verbose"}, {http.MethodGet, "/livez/serializable_read"},
	{http.MethodGet, "/readyz"}, {http.MethodGet, "/readyz?verbose"}, {http.MethodGet, "/readyz/linearizable_read?verbose"},
	{http.MethodGet, "/readyz?verbose&exclude=non_learner&exclude=bogus"}, {http.MethodPost, "/readyz"},
	{http.MethodGet, "/metrics"},
	{http.MethodGet, "/debug/vars"}, {http.MethodGet, "/nope"}, {http.MethodPost, "/health"},
	{http.MethodPost, "/version"}, {http.MethodPost, "/debug/vars"},
}

// TLS client URLs: plain HTTP requests reach the HTTP endpoints over HTTP/2
// (ALPN h2) as well as HTTP/1.1, and gRPC keeps working on the same port.
func TestClientPortHTTP2OverTLS(t *testing.T) {
	certs := framework.NewCerts(t, t.TempDir())
	p := startPair(t, func(m *framework.Member, port string) {
		m.Client = "https://127.0.0.1:" + port
		m.Extra = append(m.Extra, "--cert-file", certs.ServerCert, "--key-file", certs.ServerKey)
	})
	tlsCfg := certs.ClientTLS(t, false)
	p.waitReady(t, httpClient(viaH1, tlsCfg))
	for _, kind := range []string{viaH1, viaH2} {
		t.Run(kind, func(t *testing.T) {
			c := httpClient(kind, tlsCfg)
			for _, r := range clientPortRequests {
				cairn, _ := p.compareHTTP(t, c, clientURL(""), r.method, r.path)
				if want := map[string]int{viaH1: 1, viaH2: 2}[kind]; cairn.status != 0 && cairn.proto != want {
					t.Errorf("%s %s answered over HTTP/%d", r.method, r.path, cairn.proto)
				}
			}
		})
	}
	// One HTTP/2 connection carries many requests.
	c := httpClient(viaH2, tlsCfg)
	for i := 0; i < 30; i++ {
		if r := doHTTP(c, http.MethodGet, p.members["cairn"].Client+"/health"); r.status != 200 || r.proto != 2 {
			t.Fatalf("HTTP/2 request %d on one connection: %v", i, r)
		}
	}
	// Plain requests on the TLS-only port are refused by both.
	for _, kind := range []string{viaH1, viaH2C} {
		p.compareHTTP(t, httpClient(kind, nil), clientURL("http"), http.MethodGet, "/health")
	}
	if got := p.compareGRPC(t, "https", tlsCfg); got != "ok" {
		t.Errorf("gRPC over TLS: %s", got)
	}
	t.Run("curl", func(t *testing.T) {
		curl, err := exec.LookPath("curl")
		if err != nil {
			t.Skip("no curl")
		}
		for _, path := range []string{"/version", "/health", "/metrics"} {
			got := map[string]string{}
			for name, m := range p.members {
				out, stderr, code := framework.Run(t, nil, "", curl, "-sS", "--http2", "-k", "-w", "\n%{http_code} %{http_version}", m.Client+path)
				got[name] = fmt.Sprintf("exit %d %s %s", code, normalise(path, out), stderr)
			}
			if got["cairn"] != got["etcd"] {
				t.Errorf("curl --http2 %s:\ncairn: %.300s\netcd:  %.300s", path, got["cairn"], got["etcd"])
			}
		}
	})
}

// http and https client URLs on one port: both are served on the one
// socket, plain and TLS connections told apart as they arrive. A plain
// client gets HTTP/1 and plain gRPC (HTTP/2 without TLS is taken for gRPC,
// so a non-gRPC HTTP/2 request gets gRPC's 415); a TLS client gets HTTP/1.1,
// HTTP/2 and gRPC.
func TestClientPortBothSchemesOnOnePort(t *testing.T) {
	certs := framework.NewCerts(t, t.TempDir())
	p := startPair(t, func(m *framework.Member, port string) {
		m.ListenClient = fmt.Sprintf("http://127.0.0.1:%s,https://127.0.0.1:%s", port, port)
		m.Client = "https://127.0.0.1:" + port
		m.Extra = append(m.Extra, "--cert-file", certs.ServerCert, "--key-file", certs.ServerKey)
	})
	tlsCfg := certs.ClientTLS(t, false)
	p.waitReady(t, httpClient(viaH1, tlsCfg))
	for _, tc := range []struct {
		scheme, kind string
		want         int // etcd's status for /health
	}{
		{"http", viaH1, 200}, {"http", viaH2C, 415}, {"https", viaH1, 200}, {"https", viaH2, 200},
	} {
		t.Run(tc.scheme+" "+tc.kind, func(t *testing.T) {
			c := httpClient(tc.kind, tlsCfg)
			for _, r := range clientPortRequests {
				p.compareHTTP(t, c, clientURL(tc.scheme), r.method, r.path)
			}
			if _, etcd := p.compareHTTP(t, c, clientURL(tc.scheme), http.MethodGet, "/health"); etcd.status != tc.want {
				t.Errorf("etcd answered %v, this test expects %d", etcd, tc.want)
			}
		})
	}
	for _, scheme := range []string{"http", "https"} {
		if got := p.compareGRPC(t, scheme, tlsCfg); got != "ok" {
			t.Errorf("gRPC over %s: %s", scheme, got)
		}
	}
}

// /debug/vars (expvar) on the client port, with etcd's keys; the metrics
// URLs serve /metrics and the health endpoints only. A TLS client on the
// plain port is refused by both.
func TestClientPortDebugVars(t *testing.T) {
	metrics := map[*framework.Member]string{}
	p := startPair(t, func(m *framework.Member, _ string) {
		metrics[m] = fmt.Sprintf("http://127.0.0.1:%d", framework.FreePort(t, "127.0.0.1"))
		m.Extra = append(m.Extra, "--listen-metrics-urls", metrics[m])
	})
	c := httpClient(viaH1, nil)
	p.waitReady(t, c)
	for _, r := range clientPortRequests {
		p.compareHTTP(t, c, clientURL(""), r.method, r.path)
	}
	cairn, _ := p.compareHTTP(t, c, clientURL(""), http.MethodGet, "/debug/vars")
	for _, key := range []string{"cmdline", "memstats", "raft.status", "file_descriptor_limit"} {
		if !strings.Contains(cairn.body, `"`+key+`": `) {
			t.Errorf("cairn's /debug/vars lacks %q", key)
		}
	}
	onMetrics := func(_ string, m *framework.Member) string { return metrics[m] }
	for _, r := range clientPortRequests {
		p.compareHTTP(t, c, onMetrics, r.method, r.path)
	}
	tlsCfg := &tls.Config{InsecureSkipVerify: true}
	p.compareHTTP(t, httpClient(viaH1, tlsCfg), clientURL("https"), http.MethodGet, "/health")
}

// --listen-client-http-urls: the HTTP endpoints, /debug/vars included, on
// their own URL; the client URL serves gRPC only and refuses HTTP.
func TestClientPortClientHTTPURLs(t *testing.T) {
	httpURLs := map[*framework.Member]string{}
	p := startPair(t, func(m *framework.Member, _ string) {
		httpURLs[m] = fmt.Sprintf("http://127.0.0.1:%d", framework.FreePort(t, "127.0.0.1"))
		m.Extra = append(m.Extra, "--listen-client-http-urls", httpURLs[m])
	})
	c := httpClient(viaH1, nil)
	onHTTP := func(_ string, m *framework.Member) string { return httpURLs[m] }
	for name, m := range p.members {
		if !m.WaitLog("ready to serve client requests", 30*time.Second) {
			t.Fatalf("%s not ready:\n%s", name, m.Log())
		}
	}
	waitFor(t, 20*time.Second, func() bool {
		cairn, etcd := doHTTP(c, http.MethodGet, onHTTP("", p.members["cairn"])+"/health"), doHTTP(c, http.MethodGet, onHTTP("", p.members["etcd"])+"/health")
		return cairn.status == 200 && etcd.status == 200
	})
	for _, r := range clientPortRequests {
		p.compareHTTP(t, c, onHTTP, r.method, r.path)
	}
	for _, kind := range []string{viaH1, viaH2C} {
		p.compareHTTP(t, httpClient(kind, nil), clientURL(""), http.MethodGet, "/health")
	}
	if got := p.compareGRPC(t, "http", nil); got != "ok" {
		t.Errorf("gRPC on the client URL: %s", got)
	}
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
