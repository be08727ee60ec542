package launch

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/cairnkv/cairn/tests/framework"
)

func mustURLs(t *testing.T, ss ...string) []url.URL {
	t.Helper()
	var out []url.URL
	for _, s := range ss {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *u)
	}
	return out
}

func TestGroupClientURLs(t *testing.T) {
	type want struct {
		addr                        string
		plain, secure, grpcOn, http bool
	}
	for _, tc := range []struct {
		name         string
		client, http []string
		want         []want
		err          string
	}{
		{"one plain URL", []string{"http://127.0.0.1:2379"}, nil,
			[]want{{"127.0.0.1:2379", true, false, true, true}}, ""},
		{"both schemes share a port", []string{"http://127.0.0.1:2379", "https://127.0.0.1:2379"}, nil,
			[]want{{"127.0.0.1:2379", true, true, true, true}}, ""},
		{"schemes on their own ports", []string{"https://127.0.0.1:2379", "http://127.0.0.1:2380"}, nil,
			[]want{{"127.0.0.1:2379", false, true, true, true}, {"127.0.0.1:2380", true, false, true, true}}, ""},
		{"unix and unixs share a socket", []string{"unix://s:1", "unixs://s:1"}, nil,
			[]want{{"s:1", true, true, true, true}}, ""},
		{"client HTTP URLs split the traffic", []string{"https://127.0.0.1:2379"}, []string{"http://127.0.0.1:2381", "https://127.0.0.1:2381"},
			[]want{{"127.0.0.1:2379", false, true, true, false}, {"127.0.0.1:2381", true, true, false, true}}, ""},
		{"one address in both lists", []string{"http://127.0.0.1:2379"}, []string{"https://127.0.0.1:2379"}, nil,
			"cannot bind both --listen-client-urls and --listen-client-http-urls on the same url https://127.0.0.1:2379"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := groupClientURLs(zap.NewNop(), mustURLs(t, tc.client...), mustURLs(t, tc.http...))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d listeners, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.addr != w.addr || g.plain != w.plain || g.secure != w.secure || g.serveGRPC != w.grpcOn || g.serveHTTP != w.http {
					t.Errorf("listener %d: %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

// Each kind of client connection reaches the right server, for every mix of
// schemes and traffic on one address: HTTP/1 and HTTP/2 (plain and over
// ALPN h2, many requests on one connection) and gRPC. Results are an HTTP
// status, a gRPC health status, or "refused".
func TestClientListenerRouting(t *testing.T) {
	certs := framework.NewCerts(t, t.TempDir())
	info := &transport.TLSInfo{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, Logger: zap.NewNop()}
	type results struct{ plainH1, plainH2C, tlsH1, tlsH2, grpcPlain, grpcTLS string }
	const no = "refused"
	for _, tc := range []struct {
		name                       string
		plain, secure, grpcOn, web bool
		want                       results
	}{
		{"plain grpc+http", true, false, true, true, results{"200", "415", no, no, "SERVING", no}},
		{"tls grpc+http", false, true, true, true, results{no, no, "200", "200", no, "SERVING"}},
		{"both grpc+http", true, true, true, true, results{"200", "415", "200", "200", "SERVING", "SERVING"}},
		{"both grpc", true, true, true, false, results{no, "415", no, "415", "SERVING", "SERVING"}},
		{"both http", true, true, false, true, results{"200", no, "200", "200", no, no}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := &clientListener{lg: zap.NewNop(), addr: "127.0.0.1:0", urls: mustURLs(t, "http://127.0.0.1:0"),
				plain: tc.plain, secure: tc.secure, serveGRPC: tc.grpcOn, serveHTTP: tc.web}
			if err := cl.bind(info); err != nil {
				t.Fatal(err)
			}
			gs := grpc.NewServer()
			healthpb.RegisterHealthServer(gs, health.NewServer())
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
			done := make(chan error, 1)
			go func() { done <- cl.serve(gs, h, httpOptions{MaxConcurrentStreams: 100}) }()
			defer func() {
				cl.close()
				gs.Stop()
				if err := <-done; err != nil {
					t.Errorf("serve: %v", err)
				}
			}()
			addr := cl.l.Addr().String()
			clientTLS := certs.ClientTLS(t, false)
			got := results{
				plainH1:   httpStatus(t, h1Transport(nil), "http://"+addr),
				plainH2C:  httpStatus(t, h2Transport(nil), "http://"+addr),
				tlsH1:     httpStatus(t, h1Transport(clientTLS), "https://"+addr),
				tlsH2:     httpStatus(t, h2Transport(clientTLS), "https://"+addr),
				grpcPlain: grpcHealth(t, addr, insecure.NewCredentials()),
				grpcTLS:   grpcHealth(t, addr, credentials.NewTLS(clientTLS)),
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// h1Transport speaks HTTP/1.1 only (over TLS when tlsCfg is set).
func h1Transport(tlsCfg *tls.Config) *http.Transport {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	return &http.Transport{TLSClientConfig: tlsCfg, Protocols: p}
}

// h2Transport speaks HTTP/2 only: over ALPN h2 with tlsCfg, else with prior
// knowledge.
func h2Transport(tlsCfg *tls.Config) *http.Transport {
	p := new(http.Protocols)
	if tlsCfg != nil {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	return &http.Transport{TLSClientConfig: tlsCfg, Protocols: p, ForceAttemptHTTP2: true}
}

// httpStatus makes 20 requests on tr (HTTP/2 ones share one connection) and
// returns their common status, or "refused" if the first fails. Any later
// disagreement fails the test: a connection that breaks after its first
// request is a bug.
func httpStatus(t *testing.T, tr *http.Transport, base string) string {
	t.Helper()
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	first := ""
	for i := 0; i < 20; i++ {
		resp, err := c.Get(base + "/x")
		status := "refused"
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status = fmt.Sprint(resp.StatusCode)
		}
		if i == 0 {
			first = status
			if status == "refused" {
				return status
			}
			continue
		}
		if status != first {
			t.Errorf("%s request %d: %s (%v), first was %s", base, i, status, err, first)
			return status
		}
	}
	return first
}

// grpcHealth asks the health service, returning its status or "refused".
func grpcHealth(t *testing.T, addr string, creds credentials.TransportCredentials) string {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(false))
	if err != nil {
		if strings.Contains(err.Error(), "DeadlineExceeded") {
			t.Logf("gRPC to %s: %v", addr, err)
		}
		return "refused"
	}
	return resp.Status.String()
}
