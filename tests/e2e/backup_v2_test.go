package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
)

// TestV2BackupForceNewCluster is the seed runbooks' disaster recovery with
// the v2 command line: v2 and v3 data written to a cairn member,
// `cairnctl backup --data-dir … -backup-dir …` (the seeds' spelling, without
// ETCDCTL_API) of the stopped member, then `cairn --force-new-cluster` on
// the backup serves every v2 node unchanged as a one-member cluster of a new
// identity; the v3 keys come along only with --with-v3.
func TestV2BackupForceNewCluster(t *testing.T) {
	ctl := framework.Cairnctl(t)
	src := framework.NewMember(t, framework.Cairn(t), "infra0", "--snapshot-count", "10")
	src.StartAndWait(30 * time.Second)
	env := []string{"ETCDCTL_API=2", "ETCDCTL_ENDPOINTS=" + src.Client}
	run := func(env []string, args ...string) (string, string) {
		t.Helper()
		out, errOut, code := framework.Run(t, env, "", ctl, args...)
		if code != 0 {
			t.Fatalf("cairnctl %q: exit %d\n%s%s", args, code, out, errOut)
		}
		return out, errOut
	}
	// Enough writes for a snapshot (every 10 entries) and a WAL tail after it.
	run(env, "mkdir", "/dir")
	for i := 0; i < 14; i++ {
		run(env, "set", fmt.Sprintf("/dir/k%02d", i), fmt.Sprintf("v%d", i))
	}
	run(env, "mk", "--in-order", "/queue", "job")
	run(env, "set", "/ttl", "x", "--ttl", "3600")
	run(env, "rm", "/dir/k03")
	cli := src.Client3()
	if _, err := cli.Put(ctxT(t), "v3key", "v3value"); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	_, before := v2Get(t, src.Client, "/?recursive=true&sorted=true")
	if !strings.Contains(before, `"/dir/k13"`) {
		t.Fatalf("v2 data missing before the backup: %s", before)
	}

	// A running member's data dir is refused.
	busy := filepath.Join(t.TempDir(), "busy")
	if out, errOut, code := framework.Run(t, env, "", ctl, "backup", "--data-dir", src.DataDir, "--backup-dir", busy); code == 0 {
		t.Fatalf("backup of a running member's data dir succeeded:\n%s%s", out, errOut)
	} else if !strings.Contains(errOut, "is the member still running?") {
		t.Errorf("backup of a running member: %q", errOut)
	}

	src.Stop()
	select {
	case <-src.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("member did not stop")
	}
	dir := t.TempDir()
	v2only, withV3 := filepath.Join(dir, "backup"), filepath.Join(dir, "backup-v3")
	_, notice := run(nil, "backup", "--data-dir", src.DataDir, "-backup-dir", v2only)
	if !strings.Contains(notice, `running "backup" with the v2 API`) {
		t.Errorf("backup without ETCDCTL_API: stderr %q, want the v2 notice", notice)
	}
	run(env, "backup", "--data-dir", src.DataDir, "--backup-dir", withV3, "--with-v3")

	for _, tc := range []struct {
		dir  string
		want string // v3key's value, "" = absent
	}{{v2only, ""}, {withV3, "v3value"}} {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(tc.dir, "member", "wal")); err != nil {
				t.Fatal(err)
			}
			m := framework.NewMember(t, framework.Cairn(t), "restored", "--force-new-cluster")
			m.DataDir = tc.dir
			m.StartAndWait(30 * time.Second)
			_, after := v2Get(t, m.Client, "/?recursive=true&sorted=true")
			norm := func(s string) string { return ttlRe.ReplaceAllString(expRe.ReplaceAllString(s, ""), "") }
			if norm(after) != norm(before) {
				t.Errorf("v2 data after restore:\n%s\nwant:\n%s", after, before)
			}
			out, _ := run([]string{"ETCDCTL_API=2", "ETCDCTL_ENDPOINTS=" + m.Client}, "get", "/dir/k13")
			if out != "v13\n" {
				t.Errorf("get /dir/k13 = %q", out)
			}
			c := m.Client3()
			defer c.Close()
			resp, err := c.Get(ctxT(t), "v3key")
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if len(resp.Kvs) == 1 {
				got = string(resp.Kvs[0].Value)
			}
			if got != tc.want {
				t.Errorf("v3key = %q, want %q", got, tc.want)
			}
			ml, err := c.MemberList(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(ml.Members) != 1 {
				t.Fatalf("members after restore: %v", ml.Members)
			}
			// New writes work: the cluster has a quorum of one.
			run([]string{"ETCDCTL_API=2", "ETCDCTL_ENDPOINTS=" + m.Client}, "set", "/after", "restore")
		})
	}
}

// TestV2BackupFromEtcd34 is the differential check of a backup of an etcd
// 3.4 data dir holding v2 data: etcd 3.4 (--enable-v2, a snapshot every 20
// entries) takes v2 writes of every kind (directories, TTL keys and a TTL
// directory, hidden keys and directories, in-order keys, compare-and-swap,
// refresh, deletes) and v3 keys, some of them after its last snapshot (so
// the backup reads both the .snap's v2 store and the WAL tail); once etcd
// stopped, `cairnctl backup` and `cairn --force-new-cluster` on the backup
// serve the same v2 GETs (recursive listings and hidden keys, byte for byte
// but the remaining ttl, including indexes and expiration times) with the
// same X-Etcd-Index, the same answer to a watch from every past index (the
// history), the same v3 keys (with --with-v3), and the TTL key
// expires on cairn. v2 auth data cannot be carried and is refused in plain
// words, leaving nothing behind.
func TestV2BackupFromEtcd34(t *testing.T) {
	ref := v2Reference(t)
	ctl := framework.Cairnctl(t)
	e := framework.NewMember(t, ref, "n1", "--enable-v2", "--snapshot-count", "20")
	e.StartAndWait(30 * time.Second)
	do := func(method, p string, kv ...string) {
		t.Helper()
		req, _ := http.NewRequest(method, e.Client+"/v2/keys"+p, strings.NewReader(form(kv...).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, p, resp.StatusCode, b)
		}
	}
	do("PUT", "/dir?dir=true")
	for i := 0; i < 12; i++ {
		do("PUT", fmt.Sprintf("/dir/k%02d", i), "value", fmt.Sprintf("v%d", i))
	}
	do("PUT", "/dir/sub/deep/key", "value", "deep")
	do("PUT", "/empty?dir=true")
	do("PUT", "/ttldir?dir=true", "ttl", "3600")
	do("PUT", "/ttldir/child", "value", "c")
	do("PUT", "/long", "value", "l", "ttl", "3600")
	do("PUT", "/_hidden", "value", "h")
	do("PUT", "/_hdir/k", "value", "hk")
	do("PUT", "/dir/_h", "value", "hidden in dir")
	do("POST", "/queue", "value", "job1")
	do("POST", "/queue", "value", "job2")
	cli := e.Client3()
	for i := 0; i < 5; i++ {
		if _, err := cli.Put(ctxT(t), fmt.Sprintf("v3/%d", i), fmt.Sprintf("value%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	do("PUT", "/dir/k00", "value", "swapped", "prevValue", "v0")
	do("PUT", "/long?refresh=true&prevExist=true", "ttl", "7200")
	do("DELETE", "/dir/k01")
	do("PUT", "/dir/k02?prevExist=true", "value", "updated")
	do("PUT", "/dir/k11", "value", "new value, with ttl", "ttl", "3600")
	do("DELETE", "/dir/sub?recursive=true")
	do("PUT", "/soon", "value", "s", "ttl", "10")
	soon := time.Now()
	if _, err := cli.Put(ctxT(t), "v3/last", "after the v2 writes"); err != nil {
		t.Fatal(err)
	}
	cli.Close()

	gets := []string{"/?recursive=true&sorted=true", "/_hidden", "/_hdir?recursive=true", "/dir/_h", "/queue?sorted=true", "/ttldir"}
	snapshot := func(base string) (string, string) {
		t.Helper()
		var out []string
		for _, p := range gets {
			resp, err := http.Get(base + "/v2/keys" + p)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out = append(out, fmt.Sprintf("GET %s: %d %s", p, resp.StatusCode, ttlRe.ReplaceAllString(string(b), `"ttl":<ttl>`)))
		}
		resp, err := http.Get(base + "/v2/keys/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return strings.Join(out, "\n"), resp.Header.Get("X-Etcd-Index")
	}
	want, wantIndex := snapshot(e.Client)
	// The watch history: every waitIndex up to the last write answers with
	// the same event (the history came in etcd's .snap and the WAL tail).
	last, _ := strconv.Atoi(wantIndex)
	history := func(base string) string {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second}
		var out []string
		for i := 1; i <= last; i++ {
			resp, err := c.Get(fmt.Sprintf("%s/v2/keys/?wait=true&recursive=true&waitIndex=%d", base, i))
			if err != nil {
				t.Fatalf("watch from %d: %v", i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out = append(out, fmt.Sprintf("waitIndex %d: %d %s", i, resp.StatusCode, ttlRe.ReplaceAllString(string(b), `"ttl":<ttl>`)))
		}
		return strings.Join(out, "\n")
	}
	wantHistory := history(e.Client)
	e.Stop()
	select {
	case <-e.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd did not stop")
	}
	// The data dir has a snapshot with v2 keys and v2 writes after it.
	snaps, _ := filepath.Glob(filepath.Join(e.DataDir, "member", "snap", "*.snap"))
	if len(snaps) == 0 {
		t.Fatalf("etcd made no snapshot")
	}
	var snapIndex uint64
	fmt.Sscanf(filepath.Base(snaps[len(snaps)-1]), "%016x-%016x.snap", new(uint64), &snapIndex)
	if n, _ := strconv.ParseUint(wantIndex, 10, 64); snapIndex == 0 || n == 0 {
		t.Fatalf("snapshot %s, X-Etcd-Index %q", snaps[len(snaps)-1], wantIndex)
	}

	// Both backups start at once, so both see /soon before it expires.
	dir := t.TempDir()
	type restored struct {
		name   string
		withV3 bool
		m      *framework.Member
		w      *v2Watch
	}
	var rs []*restored
	for _, withV3 := range []bool{true, false} {
		r := &restored{name: "v2-only", withV3: withV3}
		if withV3 {
			r.name = "with-v3"
		}
		args := []string{"backup", "--data-dir", e.DataDir, "--backup-dir", filepath.Join(dir, r.name)}
		if withV3 {
			args = append(args, "--with-v3")
		}
		if out, errOut, code := framework.Run(t, []string{"ETCDCTL_API=2"}, "", ctl, args...); code != 0 {
			t.Fatalf("backup %s: exit %d\n%s%s", r.name, code, out, errOut)
		}
		r.m = framework.NewMember(t, framework.Cairn(t), "restored", "--force-new-cluster")
		r.m.DataDir = filepath.Join(dir, r.name)
		r.m.Start()
		rs = append(rs, r)
	}
	for _, r := range rs {
		r.m.WaitReady(30 * time.Second)
		r.w = openV2Watch(t, r.m.Client, "/soon?wait=true")
	}
	for _, r := range rs {
		got, gotIndex := snapshot(r.m.Client)
		if got != want || gotIndex != wantIndex {
			t.Errorf("%s: v2 GETs after the backup (X-Etcd-Index %s):\n%s\netcd 3.4 (X-Etcd-Index %s):\n%s", r.name, gotIndex, got, wantIndex, want)
		}
		if got := history(r.m.Client); got != wantHistory {
			t.Errorf("%s: watch history after the backup:\n%s\netcd 3.4:\n%s", r.name, got, wantHistory)
		}
		c := r.m.Client3()
		resp, err := c.Get(ctxT(t), "v3/", clientv3.WithPrefix())
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		var kvs []string
		for _, kv := range resp.Kvs {
			kvs = append(kvs, string(kv.Key)+"="+string(kv.Value))
		}
		wantKVs := "v3/0=value0 v3/1=value1 v3/2=value2 v3/3=value3 v3/4=value4 v3/last=after the v2 writes"
		if !r.withV3 {
			wantKVs = ""
		}
		if strings.Join(kvs, " ") != wantKVs {
			t.Errorf("%s: v3 keys after the backup: %q, want %q", r.name, kvs, wantKVs)
		}
	}
	// The short TTL key expires on cairn, as the next index.
	for _, r := range rs {
		if l := r.w.next(time.Until(soon.Add(30 * time.Second))); !strings.Contains(l, `"action":"expire"`) ||
			!strings.Contains(l, fmt.Sprintf(`"modifiedIndex":%s,`, mustAdd(t, wantIndex, 1))) {
			t.Fatalf("%s: expiry of /soon: %s", r.name, l)
		}
		r.m.Stop()
		<-r.m.Done()
	}

	// v2 auth data (a root user) has no place in cairn: refused, nothing
	// written.
	e.StartAndWait(30 * time.Second)
	req, _ := http.NewRequest("PUT", e.Client+"/v2/auth/users/root", strings.NewReader(`{"user":"root","password":"pw"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("add v2 root user: %d", resp.StatusCode)
	}
	e.Stop()
	<-e.Done()
	dst := filepath.Join(dir, "auth")
	out, errOut, code := framework.Run(t, []string{"ETCDCTL_API=2"}, "", ctl, "backup", "--data-dir", e.DataDir, "--backup-dir", dst)
	if code != 1 || !strings.Contains(errOut, "cannot be carried into cairn's v2 store: cairn has no v2 auth") {
		t.Errorf("backup of an etcd 3.4 dir with v2 auth data: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("refused backup left %s behind (%v)", dst, err)
	}
}

func mustAdd(t *testing.T, s string, d uint64) string {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatUint(n+d, 10)
}
