package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	p.waitSettled(t, c, onHTTP)
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

// --client-crl-file: a client whose certificate the list revokes is refused
// (HTTP/1.1, HTTP/2 and gRPC); other clients are served.
func TestClientPortCRL(t *testing.T) {
	certs := framework.NewCerts(t, t.TempDir())
	p := startPair(t, func(m *framework.Member, port string) {
		m.Client = "https://127.0.0.1:" + port
		m.Extra = append(m.Extra, "--cert-file", certs.ServerCert, "--key-file", certs.ServerKey,
			"--trusted-ca-file", certs.CA, "--client-crl-file", certs.CRL)
	})
	good := certs.ClientTLS(t, true)
	revoked := certs.ClientTLSWith(t, certs.RevokedCert, certs.RevokedKey)
	p.waitReady(t, httpClient(viaH1, good))
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		want int // etcd's status for /health; 0: refused
	}{
		{"valid certificate", good, 200}, {"revoked certificate", revoked, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, kind := range []string{viaH1, viaH2} {
				c := httpClient(kind, tc.cfg)
				for _, r := range clientPortRequests {
					p.compareHTTP(t, c, clientURL(""), r.method, r.path)
				}
				if _, etcd := p.compareHTTP(t, c, clientURL(""), http.MethodGet, "/health"); etcd.status != tc.want {
					t.Errorf("%s: etcd answered %v, this test expects %d", kind, etcd, tc.want)
				}
			}
			want := map[bool]string{true: "ok", false: "refused"}[tc.want == 200]
			if got := p.compareGRPC(t, "https", tc.cfg); got != want {
				t.Errorf("gRPC: %s, want %s", got, want)
			}
		})
	}
	for name, m := range p.members {
		if !strings.Contains(m.Log(), `"rejected connection on client endpoint"`) || !strings.Contains(m.Log(), "revoked") {
			t.Errorf("%s did not log the revoked client:\n%s", name, m.Log())
		}
	}
}

// --auto-tls: https client URLs without --cert-file are served with a
// self-signed certificate written to <data-dir>/fixtures/client, valid
// --self-signed-cert-validity years, and reused at restart. The generated
// settings replace the other client TLS flags: clients without a
// certificate are served despite --client-cert-auth.
func TestClientPortAutoTLS(t *testing.T) {
	certs := framework.NewCerts(t, t.TempDir())
	p := startPair(t, func(m *framework.Member, port string) {
		m.Client = "https://127.0.0.1:" + port
		m.Extra = append(m.Extra, "--auto-tls", "--self-signed-cert-validity", "2",
			"--trusted-ca-file", certs.CA, "--client-cert-auth")
	})
	tlsCfg := &tls.Config{InsecureSkipVerify: true}
	p.waitReady(t, httpClient(viaH1, tlsCfg))
	for _, kind := range []string{viaH1, viaH2} {
		c := httpClient(kind, tlsCfg)
		for _, r := range clientPortRequests {
			p.compareHTTP(t, c, clientURL(""), r.method, r.path)
		}
		if _, etcd := p.compareHTTP(t, c, clientURL(""), http.MethodGet, "/health"); etcd.status != 200 {
			t.Errorf("%s: etcd answered %v, this test expects 200", kind, etcd)
		}
	}
	if got := p.compareGRPC(t, "https", tlsCfg); got != "ok" {
		t.Errorf("gRPC: %s", got)
	}
	// A client that verifies the server does not trust the certificate.
	p.compareHTTP(t, httpClient(viaH1, &tls.Config{}), clientURL(""), http.MethodGet, "/health")

	desc := map[string]string{}
	for name, m := range p.members {
		desc[name] = describeSelfCert(t, m)
	}
	t.Logf("etcd's certificate: %s", desc["etcd"])
	if desc["cairn"] != desc["etcd"] {
		t.Errorf("generated certificates differ:\ncairn: %s\netcd:  %s", desc["cairn"], desc["etcd"])
	}
	// A restart serves the certificate already in the data dir.
	m := p.members["cairn"]
	before, _ := os.ReadFile(filepath.Join(m.DataDir, "fixtures", "client", "cert.pem"))
	m.Stop()
	m.Start()
	waitFor(t, 20*time.Second, func() bool {
		return doHTTP(httpClient(viaH1, tlsCfg), http.MethodGet, m.Client+"/health").status == 200
	})
	after, _ := os.ReadFile(filepath.Join(m.DataDir, "fixtures", "client", "cert.pem"))
	if !bytes.Equal(before, after) || !bytes.Equal(servedCert(t, m.Client), pemDER(t, after)) {
		t.Error("the restarted member did not serve the certificate it had written")
	}
}

// --auto-tls with --self-signed-cert-validity 0 stops the start before the
// data dir is created.
func TestClientPortAutoTLSZeroValidity(t *testing.T) {
	p := startPair(t, func(m *framework.Member, port string) {
		m.Client = "https://127.0.0.1:" + port
		m.Extra = append(m.Extra, "--auto-tls", "--self-signed-cert-validity", "0")
	})
	for name, m := range p.members {
		select {
		case <-m.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("%s started:\n%s", name, m.Log())
		}
		code := -1
		if ee, ok := m.ExitErr().(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != 1 || !strings.Contains(m.Log(), `"failed to get client self-signed certs"`) ||
			!strings.Contains(m.Log(), "selfSignedCertValidity is invalid,it should be greater than 0") {
			t.Errorf("%s: exit %d (want 1 and etcd's message):\n%s", name, code, m.Log())
		}
		if _, err := os.Stat(m.DataDir); err == nil {
			t.Errorf("%s created its data dir", name)
		}
	}
}

// describeSelfCert summarises the member's generated certificate and the
// files holding it: what must be alike between cairn and etcd.
func describeSelfCert(t *testing.T, m *framework.Member) string {
	t.Helper()
	dir := filepath.Join(m.DataDir, "fixtures", "client")
	var sb strings.Builder
	for _, f := range []string{filepath.Dir(dir), dir, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "%s %v; ", filepath.Base(f), fi.Mode())
	}
	b, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	der := pemDER(t, b)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := cert.PublicKey.(*ecdsa.PublicKey)
	curve := "not ECDSA"
	if pub != nil && pub.Curve == elliptic.P521() {
		curve = "P-521"
	}
	years := cert.NotAfter.Sub(cert.NotBefore).Round(time.Hour) / (365 * 24 * time.Hour)
	fmt.Fprintf(&sb, "O=%v CA=%v selfsigned=%v key=%s ips=%v dns=%v years=%d usage=%v ext=%v served=%v",
		cert.Subject.Organization, cert.IsCA, cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil, curve, cert.IPAddresses,
		cert.DNSNames, years, cert.KeyUsage, cert.ExtKeyUsage, bytes.Equal(servedCert(t, m.Client), der))
	return sb.String()
}

// pemDER is the first PEM block's bytes.
func pemDER(t *testing.T, b []byte) []byte {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	return blk.Bytes
}

// servedCert is the certificate the server at an https URL presents.
func servedCert(t *testing.T, u string) []byte {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(u, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw
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
