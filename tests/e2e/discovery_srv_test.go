package e2e

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/discovery"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/tests/framework"
)

// port is the port of a URL string.
func port(t *testing.T, s string) uint16 {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.ParseUint(u.Port(), 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(p)
}

// DNS SRV bootstrap (--discovery-srv) against a DNS server on loopback
// (cairn resolves through it with CAIRN_TEST_DNS_SERVER): three members
// listed under _etcd-server._tcp.cairn.test, with host names
// m<i>.cairn.test that resolve to 127.0.0.1. m1 advertises its host name,
// m2 and m3 their IP address, which etcd's rules match to the SRV target by
// resolving it. The members' peer URLs are the SRV targets, their IDs
// etcd's (target URL + --initial-cluster-token). cairnctl finds the
// cluster through _etcd-client._tcp.cairn.test (--discovery-srv).
// --discovery-srv-name selects _etcd-server-<name>; a domain without
// records and a member missing from the records fail with etcd's texts.
func TestDiscoverySRV(t *testing.T) {
	var ms []*framework.Member
	srv := map[string][]srvRecord{}
	a := map[string]string{}
	for i := 1; i <= 3; i++ {
		m := framework.NewMember(t, framework.Cairn(t), fmt.Sprintf("m%d", i))
		host := fmt.Sprintf("m%d.cairn.test.", i)
		a[host] = "127.0.0.1"
		srv["_etcd-server._tcp.cairn.test."] = append(srv["_etcd-server._tcp.cairn.test."], srvRecord{host, port(t, m.Peer)})
		srv["_etcd-client._tcp.cairn.test."] = append(srv["_etcd-client._tcp.cairn.test."], srvRecord{host, port(t, m.Client)})
		ms = append(ms, m)
	}
	solo := framework.NewMember(t, framework.Cairn(t), "solo")
	a["solo.cairn.test."] = "127.0.0.1"
	srv["_etcd-server-alt._tcp.cairn.test."] = []srvRecord{{"solo.cairn.test.", port(t, solo.Peer)}}
	dns := startTestDNS(t, srv, a)
	env := []string{discovery.TestDNSServerEnv + "=" + dns.Addr}

	advertise := func(m *framework.Member, i int) string {
		if i == 0 {
			return fmt.Sprintf("http://m1.cairn.test:%d", port(t, m.Peer))
		}
		return m.Peer
	}
	for i, m := range ms {
		m.Env = env
		m.OverrideArgs = []string{"--name", m.Name, "--data-dir", m.DataDir,
			"--listen-client-urls", m.Client, "--advertise-client-urls", m.Client,
			"--listen-peer-urls", m.Peer, "--initial-advertise-peer-urls", advertise(m, i),
			"--initial-cluster-token", "srv-token", "--discovery-srv", "cairn.test"}
	}
	logsOnFailure(t, ms...)
	startTogether(ms...)
	got := members(t, ms[1])
	if len(got) != 3 {
		t.Fatalf("members: %s", memberSetString(got))
	}
	for i := range ms {
		target := fmt.Sprintf("http://m%d.cairn.test:%d", i+1, port(t, ms[i].Peer))
		id := membership.NewMember("", []string{target}, "srv-token", nil).ID
		if gm, ok := got[id]; !ok || gm.Name != ms[i].Name || strings.Join(gm.PeerURLs, ",") != target {
			t.Fatalf("want member %x %s %s in %s", id, ms[i].Name, target, memberSetString(got))
		}
	}
	putKey(t, ms[0], "k", "v")
	readsBack(t, ms[2], "k", "v")

	ctl := framework.Cairnctl(t)
	out, errOut, code := framework.Run(t, env, "", ctl, "--discovery-srv", "cairn.test", "member", "list")
	if code != 0 || strings.Count(out, "started") != 3 {
		t.Fatalf("cairnctl --discovery-srv member list: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = framework.Run(t, env, "", ctl, "--discovery-srv", "cairn.test", "get", "k", "--print-value-only")
	if code != 0 || out != "v\n" {
		t.Fatalf("cairnctl --discovery-srv get: exit %d %q %s", code, out, errOut)
	}

	solo.Env = env
	solo.OverrideArgs = []string{"--name", "solo", "--data-dir", solo.DataDir,
		"--listen-client-urls", solo.Client, "--advertise-client-urls", solo.Client,
		"--listen-peer-urls", solo.Peer, "--initial-advertise-peer-urls", solo.Peer,
		"--discovery-srv", "cairn.test", "--discovery-srv-name", "alt"}
	solo.StartAndWait(60 * time.Second)
	if got := members(t, solo); len(got) != 1 {
		t.Fatalf("--discovery-srv-name alt: members %s", memberSetString(got))
	}

	for _, tc := range []struct {
		name, domain, want string
	}{
		{"m4", "cairn.test", `cannot find local etcd member \"m4\" in SRV records`},
		{"m5", "nothing.test", `error setting up initial cluster: error querying DNS SRV records for _etcd-server-ssl lookup _etcd-server-ssl._tcp.nothing.test`},
	} {
		m := framework.NewMember(t, framework.Cairn(t), tc.name)
		m.Env = env
		m.OverrideArgs = []string{"--name", tc.name, "--data-dir", m.DataDir,
			"--listen-client-urls", m.Client, "--advertise-client-urls", m.Client,
			"--listen-peer-urls", m.Peer, "--initial-advertise-peer-urls", m.Peer, "--discovery-srv", tc.domain}
		m.Start()
		if code := waitExit(t, m, 60*time.Second); code != 1 || !strings.Contains(m.Log(), `"msg":"discovery failed"`) || !strings.Contains(m.Log(), tc.want) {
			t.Fatalf("%s: exit %d, want 1 and %s:\n%s", tc.name, code, tc.want, m.Log())
		}
	}
}
