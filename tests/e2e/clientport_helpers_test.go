package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// The client-port differential tests start cairn and etcd 3.6.16 with the
// same flags, each on its own loopback ports and data dir, send both the
// same requests and compare what comes back: status codes, HTTP versions
// and bodies, normalised only where the two must differ (etcd's server
// version, values of /debug/vars and /metrics), and for refused requests
// only the fact that they were refused (error texts are the client's).

// portPair is one cairn and one etcd member configured alike.
type portPair struct {
	members map[string]*framework.Member // "cairn", "etcd"
}

// pairSetup configures a member of the pair before it starts; port is its
// client port. Set m.Client (the advertised URL, scheme included),
// m.ListenClient and m.Extra as needed.
type pairSetup func(m *framework.Member, port string)

// startPair starts cairn and etcd with setup applied to both; waitReady
// waits for them.
func startPair(t *testing.T, setup pairSetup) portPair {
	t.Helper()
	p := portPair{members: map[string]*framework.Member{}}
	bins := map[string]string{"cairn": framework.Cairn(t), "etcd": refs.EtcdRelease(t, refs.Default).Etcd}
	for _, name := range []string{"cairn", "etcd"} {
		m := framework.NewMember(t, bins[name], "n1")
		port := m.Client[strings.LastIndex(m.Client, ":")+1:]
		setup(m, port)
		m.Start()
		p.members[name] = m
	}
	return p
}

// waitReady waits until both members answer /health with 200 over c.
func (p portPair) waitReady(t *testing.T, c *http.Client) {
	t.Helper()
	for name, m := range p.members {
		if !m.WaitLog("ready to serve client requests", 30*time.Second) {
			t.Fatalf("%s not ready:\n%s", name, m.Log())
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			r := doHTTP(c, http.MethodGet, m.Client+"/health")
			if r.status == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /health never 200 (last %+v):\n%s", name, r, m.Log())
			}
			select {
			case <-m.Done():
				t.Fatalf("%s exited:\n%s", name, m.Log())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	p.waitSettled(t, c, clientURL(""))
}

// waitSettled waits until both members' /version at base agree: etcd
// reports storage version 3.5.0 for a moment after its cluster version is
// decided, where cairn reports 3.6.0 from the start.
func (p portPair) waitSettled(t *testing.T, c *http.Client, base baseURL) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		cairn := doHTTP(c, http.MethodGet, base("cairn", p.members["cairn"])+"/version")
		etcd := doHTTP(c, http.MethodGet, base("etcd", p.members["etcd"])+"/version")
		if cairn.comparable("/version") == etcd.comparable("/version") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/version never agreed:\ncairn: %v\netcd:  %v", cairn, etcd)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpResult is what one HTTP request got.
type httpResult struct {
	status int    // 0: refused (no response)
	proto  int    // HTTP major version of the response
	ctype  string // Content-Type
	body   string
	err    error // why it was refused
}

func (r httpResult) String() string {
	if r.status == 0 {
		return fmt.Sprintf("refused (%v)", r.err)
	}
	return fmt.Sprintf("%d HTTP/%d %q %.300q", r.status, r.proto, r.ctype, r.body)
}

// doHTTP sends one request with c.
func doHTTP(c *http.Client, method, url string) httpResult {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return httpResult{err: err}
	}
	resp, err := c.Do(req)
	if err != nil {
		return httpResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return httpResult{err: err}
	}
	return httpResult{status: resp.StatusCode, proto: resp.ProtoMajor, ctype: resp.Header.Get("Content-Type"), body: string(b)}
}

// The kinds of HTTP client a test sends with.
const (
	viaH1  = "HTTP/1.1"
	viaH2  = "HTTP/2"                   // over ALPN h2 on TLS
	viaH2C = "HTTP/2 (prior knowledge)" // without TLS
)

// httpClient returns a client of the given kind; tlsCfg is used for https
// URLs.
func httpClient(kind string, tlsCfg *tls.Config) *http.Client {
	p := new(http.Protocols)
	switch kind {
	case viaH1:
		p.SetHTTP1(true)
	case viaH2:
		p.SetHTTP2(true)
	case viaH2C:
		p.SetUnencryptedHTTP2(true)
	}
	tr := &http.Transport{TLSClientConfig: tlsCfg, Protocols: p, ForceAttemptHTTP2: kind == viaH2}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

var etcdServerVersion = regexp.MustCompile(`"etcdserver":"[0-9.]+"`)

// normalise keeps of a body what both implementations must agree on: the
// key set of /debug/vars, the presence of a few metric lines in /metrics,
// the lines of /livez and /readyz in any order (etcd runs their checks in
// map order), and /version without the server version (cairn reports 3.6.0
// on purpose).
func normalise(path, body string) string {
	switch {
	case strings.HasPrefix(path, "/livez") || strings.HasPrefix(path, "/readyz"):
		lines := strings.SplitAfter(body, "\n")
		sort.Strings(lines)
		return strings.Join(lines, "")
	case strings.HasPrefix(path, "/debug/vars"):
		return "keys " + strings.Join(jsonKeys(body), ",")
	case strings.HasPrefix(path, "/metrics"):
		var has []string
		for _, name := range []string{"etcd_server_has_leader 1", "etcd_server_is_leader 1", "etcd_mvcc_db_total_size_in_bytes", "go_goroutines"} {
			if strings.Contains(body, name) {
				has = append(has, name)
			}
		}
		return "metrics with " + strings.Join(has, ",")
	}
	return etcdServerVersion.ReplaceAllString(body, `"etcdserver":"<version>"`)
}

// jsonKeys lists the top-level keys of a JSON object, sorted; nil if the
// body is not one.
func jsonKeys(body string) []string {
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return []string{"<not a JSON object: " + err.Error() + ">"}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// comparable is the part of r both must agree on.
func (r httpResult) comparable(path string) string {
	if r.status == 0 {
		return "refused"
	}
	return fmt.Sprintf("%d HTTP/%d %s %s", r.status, r.proto, r.ctype, normalise(path, r.body))
}

// baseURL gives the URL a request goes to on a member, without the path.
type baseURL func(name string, m *framework.Member) string

// clientURL is the member's advertised client URL, with its scheme replaced
// when scheme is not empty.
func clientURL(scheme string) baseURL {
	return func(_ string, m *framework.Member) string {
		if scheme == "" {
			return m.Client
		}
		return scheme + m.Client[strings.Index(m.Client, "://"):]
	}
}

// compareHTTP sends method base+path to both members with c and fails the
// test when the answers differ; it returns cairn's and etcd's results.
func (p portPair) compareHTTP(t *testing.T, c *http.Client, base baseURL, method, path string) (cairn, etcd httpResult) {
	t.Helper()
	cairn = doHTTP(c, method, base("cairn", p.members["cairn"])+path)
	etcd = doHTTP(c, method, base("etcd", p.members["etcd"])+path)
	if cairn.comparable(path) != etcd.comparable(path) {
		t.Errorf("%s %s%s:\ncairn: %v\netcd:  %v", method, base("etcd", p.members["etcd"]), path, cairn, etcd)
	}
	return cairn, etcd
}

// grpcResult is "ok" when a put and a get through the official client over
// endpoint succeed, else "refused".
func grpcResult(t *testing.T, endpoint string, tlsCfg *tls.Config) string {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 2 * time.Second, TLS: tlsCfg, Logger: zap.NewNop()})
	if err != nil {
		return "refused"
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, "clientport", "v"); err != nil {
		return "refused"
	}
	g, err := c.Get(ctx, "clientport")
	if err != nil || len(g.Kvs) != 1 {
		return "refused"
	}
	return "ok"
}

// compareGRPC runs grpcResult against both members' client URL with the
// given scheme and fails the test when they differ; it returns etcd's
// result.
func (p portPair) compareGRPC(t *testing.T, scheme string, tlsCfg *tls.Config) string {
	t.Helper()
	got := map[string]string{}
	for name, m := range p.members {
		got[name] = grpcResult(t, clientURL(scheme)(name, m), tlsCfg)
	}
	if got["cairn"] != got["etcd"] {
		t.Errorf("gRPC over %s: cairn %s, etcd %s", scheme, got["cairn"], got["etcd"])
	}
	return got["etcd"]
}
