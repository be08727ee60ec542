package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// debianEtcd is the v2 reference: Debian's etcd 3.4 (etcd-server package),
// which still serves the v2 API with --enable-v2.
const debianEtcd = "/usr/bin/etcd"

// v2Reference returns Debian's etcd 3.4, installing etcd-server and
// etcd-client with apt-get when missing (as bench/harness/v2ref.go does,
// with service starts forbidden), or skips the test saying why.
func v2Reference(t *testing.T) string {
	t.Helper()
	if st, err := os.Stat(debianEtcd); err == nil && st.Mode()&0o111 != 0 {
		return debianEtcd
	}
	if os.Geteuid() != 0 {
		t.Skipf("v2 reference %s missing and installing it needs root: apt-get install -y etcd-server etcd-client", debianEtcd)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skipf("v2 reference %s missing and there is no apt-get", debianEtcd)
	}
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); os.IsNotExist(err) {
		if os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755) == nil {
			defer os.Remove(policy)
		}
	}
	cmd := exec.Command("apt-get", "install", "-y", "etcd-server", "etcd-client")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("v2 reference: apt-get install etcd-server etcd-client failed: %v\n%s", err, out)
	}
	return debianEtcd
}

// v2Step is one request of a v2 sequence: method, path under /v2/keys
// (with query), form body.
type v2Step struct {
	method, path string
	form         url.Values
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// v2Reply is a response reduced to what must match: status, which
// X-Etcd-*/X-Raft-* and Content-Type headers are present, the normalised
// X-Etcd-Index and body.
type v2Reply struct {
	status  int
	headers string
	index   string
	body    string
}

func (r v2Reply) String() string {
	return fmt.Sprintf("%d [%s] X-Etcd-Index:%s %s", r.status, r.headers, r.index, r.body)
}

var (
	inOrderRe = regexp.MustCompile(`/(\d{20})\b`)
	indexRe   = regexp.MustCompile(`"(modifiedIndex|createdIndex|index)":(\d+)`)
	expRe     = regexp.MustCompile(`"expiration":"[^"]+"`)
	ttlRe     = regexp.MustCompile(`"ttl":-?\d+`)
)

// v2Normalise rewrites a body so that two systems whose indexes differ by
// a constant offset (etcd 3.4 also counts its membership writes) compare
// equal: indexes and in-order key names lose the offset, expirations and
// remaining TTLs become placeholders.
func v2Normalise(body string, offset int64) string {
	sub := func(s string) string {
		n, _ := strconv.ParseInt(s, 10, 64)
		if n == 0 {
			return "0"
		}
		return strconv.FormatInt(n-offset, 10)
	}
	body = indexRe.ReplaceAllStringFunc(body, func(m string) string {
		p := indexRe.FindStringSubmatch(m)
		return fmt.Sprintf("%q:%s", p[1], sub(p[2]))
	})
	body = inOrderRe.ReplaceAllStringFunc(body, func(m string) string {
		return fmt.Sprintf("/<inorder %s>", sub(m[1:]))
	})
	body = expRe.ReplaceAllString(body, `"expiration":"<t>"`)
	return ttlRe.ReplaceAllString(body, `"ttl":<ttl>`)
}

// v2Run runs steps against base; the first step must be a write, whose
// X-Etcd-Index fixes the offset (its index minus 1).
func v2Run(t *testing.T, base string, steps []v2Step) []v2Reply {
	t.Helper()
	var offset int64 = -1
	var out []v2Reply
	for i, s := range steps {
		var body io.Reader
		if s.form != nil {
			body = strings.NewReader(s.form.Encode())
		}
		req, err := http.NewRequest(s.method, base+"/v2/keys"+s.path, body)
		if err != nil {
			t.Fatal(err)
		}
		if s.form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("step %d %s %s: %v", i, s.method, s.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if offset < 0 {
			n, _ := strconv.ParseInt(resp.Header.Get("X-Etcd-Index"), 10, 64)
			offset = n - 1
		}
		var hs []string
		for _, h := range []string{"Content-Type", "X-Etcd-Index", "X-Raft-Index", "X-Raft-Term", "X-Etcd-Cluster-Id", "Allow"} {
			if resp.Header.Get(h) != "" {
				hs = append(hs, h)
			}
		}
		idx := resp.Header.Get("X-Etcd-Index")
		if n, err := strconv.ParseInt(idx, 10, 64); err == nil && n != 0 {
			idx = strconv.FormatInt(n-offset, 10)
		}
		out = append(out, v2Reply{status: resp.StatusCode, headers: strings.Join(hs, ","), index: idx, body: v2Normalise(string(b), offset)})
	}
	return out
}

// v2Sequence exercises every operation, parameter and error of spec
// D.2-D.5 and D.7 that does not depend on watches.
var v2Sequence = []v2Step{
	{"PUT", "/testkey", form("value", "testvalue")},
	{"GET", "/testkey", nil},
	{"PUT", "/testkey", form("value", "second")},
	{"PUT", "/message2", form("value", "hello etcd", "ttl", "50")},
	{"HEAD", "/testkey", nil},
	{"PATCH", "/testkey", nil},
	{"PUT", "/a/b", form("value", "x")},
	{"PUT", "/a/b/c", form("value", "x")},
	{"GET", "/a/b/c", nil},
	{"GET", "/nope/deeper", nil},
	{"DELETE", "/a", nil},
	{"DELETE", "/a?dir=true", nil},
	{"PUT", "/a", form("value", "over a dir")},
	{"PUT", "/a?dir=true", nil},
	{"POST", "/queue", form("value", "job1")},
	{"POST", "/queue", form("value", "job2")},
	{"POST", "/queue?dir=true", nil},
	{"GET", "/queue?sorted=true", nil},
	{"GET", "/?recursive=true&sorted=true", nil},
	{"GET", "/?sorted=true", nil}, // unsorted listings follow Go map order in etcd
	{"PUT", "/testkey?prevValue=zz", form("value", "1")},
	{"PUT", "/testkey?prevValue=second", form("value", "third")},
	{"PUT", "/testkey?prevExist=false", form("value", "1")},
	{"PUT", "/fresh?prevExist=false", form("value", "1")},
	{"PUT", "/missing?prevExist=true", form("value", "1")},
	{"PUT", "/fresh?prevExist=true", form("value", "2")},
	{"PUT", "/fresh", form("value", "3", "noValueOnSuccess", "true")},
	{"DELETE", "/fresh?prevValue=nope", nil},
	{"DELETE", "/fresh?prevValue=3", nil},
	{"DELETE", "/a?prevValue=x", nil},
	{"PUT", "/d?dir=true", form("ttl", "100")},
	{"PUT", "/d?prevExist=true&dir=true", form("ttl", "")},
	{"PUT", "/d?prevExist=true", form("value", "not empty")},
	{"PUT", "/d/_hidden", form("value", "h")},
	{"PUT", "/d/shown", form("value", "s")},
	{"GET", "/d", nil},
	{"GET", "/d/_hidden", nil},
	{"PUT", "/t", form("value", "v", "ttl", "100")},
	{"PUT", "/t?refresh=true", form("ttl", "200")},
	{"PUT", "/t?refresh=true", form("value", "x", "ttl", "200")},
	{"PUT", "/t?refresh=true", nil},
	{"PUT", "/t?refresh=maybe", nil},
	{"PUT", "/t", form("value", "permanent now")},
	{"GET", "/t?quorum=true", nil},
	{"PUT", "/", form("value", "x")},
	{"POST", "/", form("value", "x")},
	{"DELETE", "/", nil},
	{"PUT", "/bad?ttl=abc", form("value", "x")},
	{"PUT", "/bad?prevIndex=-1", form("value", "x")},
	{"GET", "/bad?waitIndex=x", nil},
	{"PUT", "/bad?prevValue=", form("value", "x")},
	{"PUT", "/bad?wait=true", form("value", "x")},
	{"PUT", "/bad?prevExist=maybe", form("value", "x")},
	{"PUT", "/bad?dir=maybe", form("value", "x")},
	{"GET", "/bad?sorted=2", nil},
	{"GET", "/bad?quorum=x", nil},
	{"PUT", "/bad?noValueOnSuccess=x", form("value", "x")},
	{"PUT", "/form?value=query", form("value", "body wins")},
	{"GET", "/form", nil},
	{"DELETE", "/a?recursive=true", nil},
	{"DELETE", "/queue?recursive=true", nil},
	{"DELETE", "/testkey", nil},
	{"GET", "/testkey", nil},
}

// TestV2KeysDifferential runs the same v2 sequence against cairn and
// Debian's etcd 3.4 --enable-v2 and compares every reply.
func TestV2KeysDifferential(t *testing.T) {
	ref := v2Reference(t)
	c := framework.NewMember(t, framework.Cairn(t), "n1")
	e := framework.NewMember(t, ref, "n1", "--enable-v2")
	c.StartAndWait(20 * time.Second)
	e.StartAndWait(20 * time.Second)
	got := v2Run(t, c.Client, v2Sequence)
	want := v2Run(t, e.Client, v2Sequence)
	for i := range v2Sequence {
		if got[i] != want[i] {
			t.Errorf("step %d %s %s:\ncairn:    %s\netcd 3.4: %s", i, v2Sequence[i].method, v2Sequence[i].path, got[i], want[i])
		}
	}
}

// seedV2Curls are the seed documents' v2 curl commands, verbatim
// (/work/shared/seeds/001 and 002), but for the watch (wait=true), which
// needs a second window: TestV2SeedWatchCurl.
var seedV2Curls = []string{
	`curl http://127.0.0.1:4001/v2/keys/testkey -XPUT -d value='testvalue'`,
	`curl -s http://127.0.0.1:4001/v2/keys/message2 -XPUT -d value='hello etcd' -d ttl=5`,
	`curl http://127.0.0.1:4001/v2/keys/testkey`,
	`curl -s http://127.0.0.1:4001/v2/keys/testkey -XDELETE`,
	`curl -s http://127.0.0.1:4001/v2/keys/message2 -XPUT -d value='hello etcd 1'`,
	`curl -s http://127.0.0.1:4001/v2/keys/message2 -XPUT -d value='hello etcd 2'`,
	`curl -s http://127.0.0.1:4001/v2/keys/message3 -XPOST -d value='hello etcd 1'`,
	`curl -s 'http://127.0.0.1:4001/v2/keys/message3?recursive=true&sorted=true'`,
	`curl -s http://127.0.0.1:4001/v2/keys/message8 -XPUT -d dir=true`,
	`curl -s 'http://127.0.0.1:4001/v2/keys/message7?dir=true' -XDELETE`,
	`curl -s 'http://127.0.0.1:4001/v2/keys/message7?recursive=true' -XDELETE`,
	`curl -s http://127.0.0.1:4001/v2/keys/?recursive=true`,
	`curl -s http://127.0.0.1:4001/v2/keys/file -XPUT --data-urlencode value@upfile`,
}

// TestV2SeedCurls runs the seeds' curl commands verbatim (port 4001
// replaced by the member's) against cairn and etcd 3.4 and compares the
// normalised outputs.
func TestV2SeedCurls(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	ref := v2Reference(t)
	run := func(m *framework.Member) []string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "upfile"), []byte("line 1\nline 2 & more\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var out []string
		var offset int64 = -1
		for _, c := range seedV2Curls {
			cmd := exec.Command("sh", "-c", strings.ReplaceAll(c, "http://127.0.0.1:4001", m.Client))
			cmd.Dir = dir
			b, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			if offset < 0 {
				var ev struct{ Node struct{ ModifiedIndex int64 } }
				if err := json.Unmarshal(b, &ev); err != nil {
					t.Fatalf("%s: %q: %v", c, b, err)
				}
				offset = ev.Node.ModifiedIndex - 1
			}
			out = append(out, v2Normalise(sortNodes(b), offset))
		}
		return out
	}
	c := framework.NewMember(t, framework.Cairn(t), "n1")
	e := framework.NewMember(t, ref, "n1", "--enable-v2")
	c.StartAndWait(20 * time.Second)
	e.StartAndWait(20 * time.Second)
	got, want := run(c), run(e)
	for i := range seedV2Curls {
		if got[i] != want[i] {
			t.Errorf("%s\ncairn:    %s\netcd 3.4: %s", seedV2Curls[i], got[i], want[i])
		}
	}
}

// sortNodes orders every "nodes" list by key: a listing without sorted=true
// follows Go's map order in etcd, so only its set of children can match.
func sortNodes(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	var walk func(any)
	walk = func(x any) {
		m, ok := x.(map[string]any)
		if !ok {
			return
		}
		for _, c := range m {
			walk(c)
		}
		if ns, ok := m["nodes"].([]any); ok {
			for _, n := range ns {
				walk(n)
			}
			sort.Slice(ns, func(i, j int) bool {
				a, _ := ns[i].(map[string]any)
				b, _ := ns[j].(map[string]any)
				return fmt.Sprint(a["key"]) < fmt.Sprint(b["key"])
			})
		}
	}
	walk(v)
	out, _ := json.Marshal(v)
	return string(out)
}

func v2Get(t *testing.T, base, p string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/v2/keys" + p)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func v2Put(t *testing.T, base, p string, kv ...string) string {
	t.Helper()
	req, _ := http.NewRequest("PUT", base+"/v2/keys"+p, strings.NewReader(form(kv...).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT %s: %d %s", p, resp.StatusCode, b)
	}
	return string(b)
}

// TestV2TTLCluster: a key with a TTL written on one member of a 3-member
// cairn cluster is seen by every member and expires on every member
// within a second of its TTL.
func TestV2TTLCluster(t *testing.T) {
	c := framework.NewCluster(t, []string{framework.Cairn(t)}, 3)
	c.Start(30 * time.Second)
	ms := c.Members
	v2Put(t, ms[0].Client, "/ttl/k", "value", "v", "ttl", "2")
	v2Put(t, ms[1].Client, "/ttl/keep", "value", "v")
	start := time.Now()
	for _, m := range ms {
		if code, body := v2Get(t, m.Client, "/ttl/k?quorum=true"); code != 200 {
			t.Fatalf("%s before expiry: %d %s", m.Name, code, body)
		}
	}
	for _, m := range ms {
		for {
			code, _ := v2Get(t, m.Client, "/ttl/k")
			if code == 404 {
				break
			}
			if time.Since(start) > 3*time.Second {
				t.Fatalf("%s still serves /ttl/k %v after a 2 s TTL", m.Name, time.Since(start))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, m := range ms {
		if code, body := v2Get(t, m.Client, "/ttl/keep"); code != 200 {
			t.Fatalf("%s lost the permanent key: %d %s", m.Name, code, body)
		}
	}
}

// TestV2RestartAndRollback: v2 data survives a restart of cairn; etcd
// 3.6.16 starts on the data dir holding it, with and without replaying
// the carrier entries from the WAL (the second copy has no backend, so
// etcd applies the whole log), serves the v3 keys unchanged and shows no
// trace of v2; cairn started again on etcd's dir serves the v2 data.
func TestV2RestartAndRollback(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m := framework.NewMember(t, framework.Cairn(t), "n1")
	m.StartAndWait(20 * time.Second)
	cl := m.Client3()
	if _, err := cl.Put(ctx, "v3/a", "1"); err != nil {
		t.Fatal(err)
	}
	v2Put(t, m.Client, "/dir/k", "value", "v2 value")
	v2Put(t, m.Client, "/dir/_hidden", "value", "h")
	v2Put(t, m.Client, "/ttl", "value", "t", "ttl", "3600")
	v2Put(t, m.Client, "/gone", "value", "x")
	req, _ := http.NewRequest("DELETE", m.Client+"/v2/keys/gone", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("delete: %v %v", resp, err)
	}
	if _, err := cl.Put(ctx, "v3/b", "2"); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	_, before := v2Get(t, m.Client, "/?recursive=true&sorted=true")
	strip := func(s string) string { return ttlRe.ReplaceAllString(s, `"ttl":<ttl>`) }
	m.Stop()
	<-m.Done()

	m.StartAndWait(20 * time.Second)
	if _, after := v2Get(t, m.Client, "/?recursive=true&sorted=true"); strip(after) != strip(before) {
		t.Fatalf("v2 data after restart:\n%s\nwant\n%s", after, before)
	}
	v3 := func(mm *framework.Member) string {
		c := mm.Client3()
		defer c.Close()
		r, err := c.Get(ctx, "", clientv3.WithFromKey())
		if err != nil {
			t.Fatalf("%s: %v", mm.Bin, err)
		}
		var kvs []string
		for _, kv := range r.Kvs {
			kvs = append(kvs, fmt.Sprintf("%q=%q@%d", kv.Key, kv.Value, kv.ModRevision))
		}
		sort.Strings(kvs)
		return fmt.Sprintf("rev %d %v", r.Header.Revision, kvs)
	}
	wantV3 := v3(m)
	m.Stop()
	<-m.Done()

	// A copy without the backend: etcd replays the whole WAL.
	replay := filepath.Join(t.TempDir(), "replay.etcd")
	if out, err := exec.Command("cp", "-a", m.DataDir, replay).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if err := os.Remove(filepath.Join(replay, "member", "snap", "db")); err != nil {
		t.Fatal(err)
	}
	if snaps, _ := filepath.Glob(filepath.Join(replay, "member", "snap", "*.snap")); len(snaps) != 0 {
		t.Fatalf("expected no .snap with the default snapshot count: %v", snaps)
	}

	for _, dir := range []string{replay, m.DataDir} {
		e := framework.NewMember(t, ref.Etcd, "n1")
		e.DataDir, e.Client, e.Peer = dir, m.Client, m.Peer
		e.StartAndWait(30 * time.Second)
		if got := v3(e); got != wantV3 {
			t.Errorf("etcd 3.6 on %s: %s, want %s", filepath.Base(dir), got, wantV3)
		}
		if code, _ := v2Get(t, e.Client, "/dir/k"); code != 404 {
			t.Errorf("etcd 3.6 serves /v2/keys: %d", code)
		}
		if strings.Contains(e.Log(), "v2") && strings.Contains(e.Log(), "panic") {
			t.Errorf("etcd 3.6 log mentions a v2 panic:\n%s", e.Log())
		}
		e.Stop()
		<-e.Done()
		if err := e.ExitErr(); err != nil && !strings.Contains(err.Error(), "signal") && !strings.Contains(err.Error(), "exit status") {
			t.Errorf("etcd 3.6 exit: %v", err)
		}
	}

	// cairn again on the dir etcd ran on.
	m2 := framework.NewMember(t, framework.Cairn(t), "n1")
	m2.DataDir, m2.Client, m2.Peer = m.DataDir, m.Client, m.Peer
	m2.StartAndWait(20 * time.Second)
	if _, after := v2Get(t, m2.Client, "/?recursive=true&sorted=true"); strip(after) != strip(before) {
		t.Fatalf("v2 data after the round trip through etcd 3.6:\n%s\nwant\n%s", after, before)
	}
}

// TestV2Disabled: --enable-v2=false leaves /v2/keys to the plain 404.
func TestV2Disabled(t *testing.T) {
	m := framework.NewMember(t, framework.Cairn(t), "n1", "--enable-v2=false")
	m.StartAndWait(20 * time.Second)
	if code, body := v2Get(t, m.Client, "/x"); code != 404 || body != "404 page not found\n" {
		t.Fatalf("/v2/keys with --enable-v2=false: %d %q", code, body)
	}
}
