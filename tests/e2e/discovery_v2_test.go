package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// v2 discovery (--discovery <url>, the /v2/keys protocol of
// discovery.etcd.io), which etcd 3.6.16 still serves (deprecated). The
// discovery service is Debian's etcd 3.4 with --enable-v2, and a one-member
// cairn when it serves v2 watches (the protocol waits on keys). A cairn
// and an etcd 3.6.16 member register under one token of size 2 and form a
// cluster with etcd's member IDs (peer URL + discovery URL). Then cairn and
// etcd fail the same way (same exit lines) for a full cluster, a missing
// size key and a member registering its ID a second time after losing its
// data dir.
func TestDiscoveryV2(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	services := map[string]func(t *testing.T) *framework.Member{
		"etcd 3.4": func(t *testing.T) *framework.Member {
			return framework.NewMember(t, v2Reference(t), "disc", "--enable-v2")
		},
		"cairn": func(t *testing.T) *framework.Member { return framework.NewMember(t, framework.Cairn(t), "disc") },
	}
	for _, name := range []string{"etcd 3.4", "cairn"} {
		t.Run(name, func(t *testing.T) {
			disc := services[name](t)
			disc.StartAndWait(30 * time.Second)
			if !servesV2Watches(t, disc) {
				t.Skipf("%s serves no v2 watches, which v2 discovery needs", name)
			}
			dir := disc.Client + "/v2/keys/_etcd/registry/tok2"
			v2Put(t, disc.Client, "/_etcd/registry/tok2/_config/size", "value", "2")
			c1 := discoveryMember(t, framework.Cairn(t), "c1", "--discovery", dir)
			e2 := discoveryMember(t, ref.Etcd, "e2", "--discovery", dir)
			logsOnFailure(t, c1, e2, disc)
			startTogether(c1, e2)
			checkDiscoveredMembers(t, c1, dir, c1, e2)
			checkDiscoveredMembers(t, e2, dir, c1, e2)
			putKey(t, c1, "k", "from cairn")
			readsBack(t, e2, "k", "from cairn")

			for _, tc := range []struct{ url, want string }{
				{dir, "failed to join discovery cluster (discovery: cluster is full)"},
				// etcd 3.6 surfaces the service's own v2 error here.
				{disc.Client + "/v2/keys/_etcd/registry/nosize", "failed to join discovery cluster (100: Key not found"},
				{disc.Client + "/version/x", "failed to join discovery cluster (discovery: bad discovery endpoint)"},
			} {
				c := failedDiscovery(t, discoveryMember(t, framework.Cairn(t), "x", "--discovery", tc.url))
				e := failedDiscovery(t, discoveryMember(t, ref.Etcd, "x", "--discovery", tc.url))
				sameExitLines(t, tc.url, c, e, tc.want)
			}

			// Registering the same member ID again is refused (create-only).
			var lines [][]string
			for _, m := range []*framework.Member{c1, e2} {
				m.Kill()
				if err := os.RemoveAll(m.DataDir); err != nil {
					t.Fatal(err)
				}
				lines = append(lines, failedDiscovery(t, m))
			}
			sameExitLines(t, "duplicate id", lines[0], lines[1], "member has been registered with discovery service | discovery: found duplicate id | "+dir)
		})
	}
}

// servesV2Watches reports whether m answers a v2 wait at once for a past
// index (as etcd does) instead of refusing v2 watches.
func servesV2Watches(t *testing.T, m *framework.Member) bool {
	t.Helper()
	v2Put(t, m.Client, "/probe", "value", "x")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.Client+"/v2/keys/probe?wait=true&waitIndex=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("v2 wait probe: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"action":"set"`)
}
