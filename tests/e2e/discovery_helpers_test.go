package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/tests/framework"
)

// discoveryMember prepares a member bootstrapped by discovery: its own
// URLs, no --initial-cluster, and the given discovery flags.
func discoveryMember(t *testing.T, bin, name string, flags ...string) *framework.Member {
	t.Helper()
	m := framework.NewMember(t, bin, name)
	m.OverrideArgs = append([]string{
		"--name", name, "--data-dir", m.DataDir,
		"--listen-client-urls", m.Client, "--advertise-client-urls", m.Client,
		"--listen-peer-urls", m.Peer, "--initial-advertise-peer-urls", m.Peer,
	}, flags...)
	return m
}

// startTogether starts every member (discovery holds each until all have
// registered), then waits until each serves.
func startTogether(ms ...*framework.Member) {
	for _, m := range ms {
		m.Start()
	}
	for _, m := range ms {
		m.WaitReady(90 * time.Second)
	}
}

// checkDiscoveredMembers checks that via lists exactly ms, each with the
// member ID etcd derives from its peer URL and the discovery token.
func checkDiscoveredMembers(t *testing.T, via *framework.Member, token string, ms ...*framework.Member) {
	t.Helper()
	got := members(t, via)
	if len(got) != len(ms) {
		t.Fatalf("%s lists %d members, want %d: %s", via.Name, len(got), len(ms), memberSetString(got))
	}
	for _, m := range ms {
		id := membership.NewMember(m.Name, []string{m.Peer}, token, nil).ID
		gm, ok := got[id]
		if !ok || gm.Name != m.Name || strings.Join(gm.PeerURLs, ",") != m.Peer {
			t.Fatalf("%s: want member %x %s %s in %s", via.Name, id, m.Name, m.Peer, memberSetString(got))
		}
	}
}

// discoveryExitLines are the warn lines of etcd's discovery failure exit
// in a member's log, as "msg | error | discovery-token", in order.
func discoveryExitLines(log string) []string {
	var out []string
	for line := range strings.Lines(log) {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil || e["level"] != "warn" {
			continue
		}
		switch e["msg"] {
		case "failed to bootstrap; discovery token was already used",
			"do not reuse discovery token; generate a new one to bootstrap a cluster",
			"member has been registered with discovery service",
			"but could not find valid cluster configuration",
			"check data dir if previous bootstrap succeeded",
			"or use a new discovery token if previous bootstrap failed",
			"member with duplicated name has already been registered",
			"cURL the discovery token URL for details":
			out = append(out, fmt.Sprintf("%v | %v | %v", e["msg"], e["error"], e["discovery-token"]))
		}
	}
	return out
}

// failedDiscovery starts m, which must exit 1 on a discovery error, and
// returns its exit lines.
func failedDiscovery(t *testing.T, m *framework.Member) []string {
	t.Helper()
	m.Start()
	if code := waitExit(t, m, 60*time.Second); code != 1 {
		t.Fatalf("%s exited %d, want 1\n%s", m.Name, code, m.Log())
	}
	lines := discoveryExitLines(m.Log())
	if len(lines) == 0 {
		t.Fatalf("%s: no discovery exit lines\n%s", m.Name, m.Log())
	}
	return lines
}

// sameExitLines fails unless cairn and etcd wrote the same exit lines and
// they carry want.
func sameExitLines(t *testing.T, what string, cairn, etcd []string, want string) {
	t.Helper()
	if strings.Join(cairn, "\n") != strings.Join(etcd, "\n") {
		t.Fatalf("%s: cairn's exit lines differ from etcd's:\ncairn:\n%s\netcd:\n%s", what, strings.Join(cairn, "\n"), strings.Join(etcd, "\n"))
	}
	if !strings.Contains(strings.Join(cairn, "\n"), want) {
		t.Fatalf("%s: exit lines lack %q:\n%s", what, want, strings.Join(cairn, "\n"))
	}
}

// putKey writes key=val through the v3 API of m.
func putKey(t *testing.T, m *framework.Member, key, val string) {
	t.Helper()
	c := m.Client3()
	defer c.Close()
	if _, err := c.Put(ctxT(t), key, val); err != nil {
		t.Fatalf("put %s on %s: %v", key, m.Name, err)
	}
}

// registry lists the v3 discovery keys of token on the service m, as
// "key=value" lines.
func registry(t *testing.T, m *framework.Member, token string) []string {
	t.Helper()
	c := m.Client3()
	defer c.Close()
	r, err := c.Get(ctxT(t), "/_etcd/registry/"+token+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range r.Kvs {
		out = append(out, string(kv.Key)+"="+string(kv.Value))
	}
	return out
}

// readsBack checks a linearizable read of key on m returns val.
func readsBack(t *testing.T, m *framework.Member, key, val string) {
	t.Helper()
	c := m.Client3()
	defer c.Close()
	r, err := c.Get(ctxT(t), key)
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != val {
		t.Fatalf("get %s on %s: %v %v, want %s", key, m.Name, r, err, val)
	}
}
