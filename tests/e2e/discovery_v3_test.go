package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// v3 discovery with cairn on both sides: a one-member cairn serves as the
// discovery service, three cairn members register under one token of size
// 3 and form the cluster with etcd's member IDs (peer URL + token). Then
// the failure paths: a fourth member finds the cluster full, a token
// without a size key is refused, a restart ignores the discovery flags,
// and a member whose data dir was lost is refused instead of rejoining
// with an empty log.
func TestDiscoveryV3(t *testing.T) {
	disc := framework.NewMember(t, framework.Cairn(t), "disc")
	disc.StartAndWait(30 * time.Second)
	putKey(t, disc, "/_etcd/registry/tok/_config/size", "3")
	flags := []string{"--discovery-token", "tok", "--discovery-endpoints", disc.Client}
	var ms []*framework.Member
	for i := 1; i <= 3; i++ {
		ms = append(ms, discoveryMember(t, framework.Cairn(t), fmt.Sprintf("m%d", i), flags...))
	}
	logsOnFailure(t, append(ms, disc)...)
	startTogether(ms...)
	checkDiscoveredMembers(t, ms[0], "tok", ms...)
	reg := registry(t, disc, "tok")
	for _, m := range ms {
		key := fmt.Sprintf("/_etcd/registry/tok/members/%x=%s=%s", membership.NewMember(m.Name, []string{m.Peer}, "tok", nil).ID, m.Name, m.Peer)
		if !strings.Contains(strings.Join(reg, "\n"), key) {
			t.Fatalf("registry lacks %s:\n%s", key, strings.Join(reg, "\n"))
		}
	}
	putKey(t, ms[0], "k", "v")
	readsBack(t, ms[2], "k", "v")

	full := discoveryMember(t, framework.Cairn(t), "m4", flags...)
	lines := failedDiscovery(t, full)
	if !strings.Contains(lines[0], "failed to join discovery cluster (discovery: cluster is full)") {
		t.Fatalf("fourth member: %q", lines)
	}
	nosize := discoveryMember(t, framework.Cairn(t), "m5", "--discovery-token", "nosize", "--discovery-endpoints", disc.Client)
	if lines := failedDiscovery(t, nosize); !strings.Contains(lines[0], "(discovery: size key not found)") {
		t.Fatalf("token without size: %q", lines)
	}

	ms[1].Stop()
	ms[1].Start()
	ms[1].WaitReady(60 * time.Second)
	if !strings.Contains(ms[1].Log(), "discovery token is ignored since cluster already initialized; valid logs are found") {
		t.Fatalf("restart did not warn that discovery is ignored:\n%s", ms[1].Log())
	}

	ms[2].Kill()
	if err := os.RemoveAll(ms[2].DataDir); err != nil {
		t.Fatal(err)
	}
	ms[2].Start()
	if code := waitExit(t, ms[2], 60*time.Second); code != 1 {
		t.Fatalf("a member with a lost data dir rediscovering: exit %d\n%s", code, ms[2].Log())
	}
	id := membership.NewMember(ms[2].Name, []string{ms[2].Peer}, "tok", nil).ID
	if want := fmt.Sprintf(`"member %x has already been bootstrapped"`, id); !strings.Contains(ms[2].Log(), want) {
		t.Fatalf("want %s in:\n%s", want, ms[2].Log())
	}
}

// v3 discovery is etcd's protocol: etcd 3.6.16 serves as the discovery
// service, and two cairn members and one etcd 3.6.16 member discover one
// token and form one cluster. A fourth member and a token without size
// then fail the same way under etcd and cairn (same exit lines).
func TestDiscoveryV3MixedWithEtcd(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	disc := framework.NewMember(t, ref.Etcd, "disc")
	disc.StartAndWait(30 * time.Second)
	putKey(t, disc, "/_etcd/registry/mix/_config/size", "3")
	flags := []string{"--discovery-token", "mix", "--discovery-endpoints", disc.Client}
	ms := []*framework.Member{
		discoveryMember(t, framework.Cairn(t), "c1", flags...),
		discoveryMember(t, ref.Etcd, "e2", flags...),
		discoveryMember(t, framework.Cairn(t), "c3", flags...),
	}
	logsOnFailure(t, append(ms, disc)...)
	startTogether(ms...)
	checkDiscoveredMembers(t, ms[1], "mix", ms...)
	checkDiscoveredMembers(t, ms[0], "mix", ms...)
	putKey(t, ms[1], "k", "from etcd")
	readsBack(t, ms[2], "k", "from etcd")

	for _, tc := range []struct{ token, want string }{
		{"mix", "failed to join discovery cluster (discovery: cluster is full)"},
		{"nosize", "failed to join discovery cluster (discovery: size key not found)"},
	} {
		f := []string{"--discovery-token", tc.token, "--discovery-endpoints", disc.Client}
		c := failedDiscovery(t, discoveryMember(t, framework.Cairn(t), "x", f...))
		e := failedDiscovery(t, discoveryMember(t, ref.Etcd, "x", f...))
		sameExitLines(t, tc.token, c, e, tc.want)
	}

	// Two registrations naming one peer URL: both members refuse the
	// discovered cluster, under cairn as under etcd.
	var errs []string
	var dupPair []*framework.Member
	for i, bin := range []string{framework.Cairn(t), ref.Etcd} {
		token := fmt.Sprintf("dup%d", i)
		putKey(t, disc, "/_etcd/registry/"+token+"/_config/size", "2")
		a := discoveryMember(t, bin, "a")
		b := discoveryMember(t, bin, "b")
		if i > 0 { // the same URLs, so the texts can be compared
			prevA, prevB := dupPair[0], dupPair[1]
			a.Client, a.Peer, b.Client, b.Peer = prevA.Client, prevA.Peer, prevB.Client, prevB.Peer
		}
		dupPair = []*framework.Member{a, b}
		f := []string{"--discovery-token", token, "--discovery-endpoints", disc.Client}
		a.OverrideArgs = append([]string{"--name", "a", "--data-dir", a.DataDir,
			"--listen-client-urls", a.Client, "--advertise-client-urls", a.Client,
			"--listen-peer-urls", a.Peer, "--initial-advertise-peer-urls", a.Peer}, f...)
		b.OverrideArgs = append([]string{"--name", "b", "--data-dir", b.DataDir,
			"--listen-client-urls", b.Client, "--advertise-client-urls", b.Client,
			"--listen-peer-urls", b.Peer, "--initial-advertise-peer-urls", a.Peer + "," + b.Peer}, f...)
		a.Start()
		b.Start()
		for _, m := range []*framework.Member{a, b} {
			if code := waitExit(t, m, 60*time.Second); code != 1 {
				t.Fatalf("%s with a duplicate URL exited %d\n%s", bin, code, m.Log())
			}
		}
		errs = append(errs, discoveryFailedError(t, a.Log()))
	}
	bURLs := sortedStrings([]string{dupPair[0].Peer, dupPair[1].Peer})
	want := fmt.Sprintf("discovery cluster a=%s,b=%s,b=%s has duplicate url", dupPair[0].Peer, bURLs[0], bURLs[1])
	if errs[0] != want || errs[1] != want {
		t.Fatalf("duplicate URL: cairn %q, etcd %q, want %q", errs[0], errs[1], want)
	}
}

// discoveryFailedError is the error of the "discovery failed" line of a log.
func discoveryFailedError(t *testing.T, log string) string {
	t.Helper()
	for line := range strings.Lines(log) {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["msg"] == "discovery failed" {
			s, _ := e["error"].(string)
			return s
		}
	}
	t.Fatalf("no \"discovery failed\" line in:\n%s", log)
	return ""
}
