package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tests/framework"
)

// v2HTTP is one request of the cluster-endpoint sequences.
type v2HTTP struct {
	method, path, ctype, body string
	// shape: compare only the JSON body's structure (keys and value
	// types), for bodies holding times and counters.
	shape bool
}

var (
	leaderNameRe = regexp.MustCompile(`"name":"m\d"`)
	memberPathRe = regexp.MustCompile(`/v2/members/[0-9a-f]{10,16}$`)
)

var hexIDRe = regexp.MustCompile(`"(id|leader)":"[0-9a-f]+"|"[0-9a-f]{6,16}":\{`)

// v2HTTPRun runs reqs against m and returns one line per request: status,
// the headers that must match, and the body with m's URLs and member IDs
// replaced by placeholders.
func v2HTTPRun(t *testing.T, ms []*framework.Member, reqs []v2HTTP) []string {
	t.Helper()
	var out []string
	for _, rq := range reqs {
		req, err := http.NewRequest(rq.method, ms[0].Client+rq.path, strings.NewReader(rq.body))
		if err != nil {
			t.Fatal(err)
		}
		if rq.ctype != "" {
			req.Header.Set("Content-Type", rq.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", rq.method, rq.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var hs []string
		for _, h := range []string{"Content-Type", "X-Etcd-Cluster-Id", "Allow"} {
			if v := resp.Header.Get(h); v != "" {
				if h == "X-Etcd-Cluster-Id" {
					v = "<cid>"
				}
				hs = append(hs, h+"="+v)
			}
		}
		body := string(b)
		for i, m := range ms {
			body = strings.ReplaceAll(body, m.Client, fmt.Sprintf("<client%d>", i))
			body = strings.ReplaceAll(body, m.Peer, fmt.Sprintf("<peer%d>", i))
		}
		body = hexIDRe.ReplaceAllStringFunc(body, func(s string) string {
			if strings.HasSuffix(s, "{") {
				return `"<id>":{`
			}
			return s[:strings.Index(s, ":")] + `:"<id>"`
		})
		if rq.shape {
			body = jsonShape(t, b)
		}
		body = sortMembers(body)
		body = leaderNameRe.ReplaceAllString(body, `"name":"<m>"`)
		p := memberPathRe.ReplaceAllString(rq.path, "/v2/members/<id>")
		out = append(out, fmt.Sprintf("%s %s: %d [%s] %q", rq.method, p, resp.StatusCode, strings.Join(hs, " "), body))
	}
	return out
}

// jsonShape describes a JSON document by its keys and value types; the
// optional rate fields of /v2/stats/self are left out.
func jsonShape(t *testing.T, b []byte) string {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "not JSON: " + string(b)
	}
	var shape func(any) string
	shape = func(x any) string {
		switch x := x.(type) {
		case map[string]any:
			var ks []string
			for k, v := range x {
				if strings.HasSuffix(k, "Rate") {
					continue // present only within a second of an append
				}
				if regexp.MustCompile(`^[0-9a-f]{6,16}$`).MatchString(k) {
					k = "<id>"
				}
				ks = append(ks, k+":"+shape(v))
			}
			sort.Strings(ks)
			return "{" + strings.Join(ks, ",") + "}"
		case []any:
			return "[...]"
		case string:
			return "string"
		case float64:
			return "number"
		case bool:
			return "bool"
		}
		return "null"
	}
	return shape(v)
}

// v2ClusterSequence: spec D.8-D.9 on a one-member cluster. The successful
// member add comes last: it leaves the cluster without a quorum.
var v2ClusterSequence = []v2HTTP{
	{method: "GET", path: "/v2/members"},
	{method: "GET", path: "/v2/members/"},
	{method: "GET", path: "/v2/members/leader"},
	{method: "GET", path: "/v2/members/nope"},
	{method: "PATCH", path: "/v2/members"},
	{method: "POST", path: "/v2/members", ctype: "application/x-www-form-urlencoded", body: `{"peerURLs":["http://127.0.0.1:1"]}`},
	{method: "POST", path: "/v2/members/leader", body: `{}`},
	{method: "POST", path: "/v2/members", ctype: "application/json; charset=utf-8", body: `{"peerURLs":["x"]}`},
	{method: "POST", path: "/v2/members", ctype: "application/json", body: `{"peerURLs":`},
	{method: "POST", path: "/v2/members", ctype: "application/json", body: `{"peerURLs":[]}`},
	{method: "DELETE", path: "/v2/members"},
	{method: "DELETE", path: "/v2/members/"},
	{method: "DELETE", path: "/v2/members/zz"},
	{method: "DELETE", path: "/v2/members/123"},
	{method: "PUT", path: "/v2/members/123", ctype: "application/json", body: `{"peerURLs":["http://127.0.0.1:2"]}`},
	{method: "PUT", path: "/v2/members/123", ctype: "text/plain", body: `{"peerURLs":["http://127.0.0.1:2"]}`},
	{method: "GET", path: "/v2/machines"},
	{method: "HEAD", path: "/v2/machines"},
	{method: "POST", path: "/v2/machines"},
	{method: "GET", path: "/v2/stats/self", shape: true},
	{method: "GET", path: "/v2/stats/leader", shape: true},
	{method: "GET", path: "/v2/stats/store", shape: true},
	{method: "POST", path: "/v2/stats/store"},
	{method: "GET", path: "/v2/stats"},
	{method: "GET", path: "/v2/stats/nope"},
}

// TestV2ClusterEndpointsDifferential compares /v2/members, /v2/machines
// and /v2/stats of a one-member cairn and a one-member etcd 3.4, then the
// members' own update, the add of a new member, a duplicate peer URL and
// the member list with an unstarted member.
func TestV2ClusterEndpointsDifferential(t *testing.T) {
	ref := v2Reference(t)
	c := framework.NewMember(t, framework.Cairn(t), "n1")
	e := framework.NewMember(t, ref, "n1", "--enable-v2")
	c.StartAndWait(20 * time.Second)
	e.StartAndWait(20 * time.Second)
	run := func(m *framework.Member) []string {
		self := memberID(t, m)
		seq := append([]v2HTTP(nil), v2ClusterSequence...)
		seq = append(seq,
			v2HTTP{method: "PUT", path: fmt.Sprintf("/v2/members/%x", self), ctype: "application/json", body: `{"peerURLs":["` + m.Peer + `"]}`},
			v2HTTP{method: "POST", path: "/v2/members", ctype: "application/json", body: `{"peerURLs":["` + m.Peer + `"]}`},
			v2HTTP{method: "POST", path: "/v2/members", ctype: "application/json", body: `{"peerURLs":["http://127.0.0.1:9"]}`},
			v2HTTP{method: "GET", path: "/v2/members"},
		)
		return v2HTTPRun(t, []*framework.Member{m}, seq)
	}
	got, want := run(c), run(e)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cairn:    %s\netcd 3.4: %s", got[i], want[i])
		} else if testing.Verbose() {
			t.Logf("%s", got[i])
		}
	}
}

// TestV2ClusterThreeMembers compares a 3-member cairn and a 3-member etcd
// 3.4 cluster: the member list and leader (same shape, IDs and URLs
// replaced), /v2/stats/leader on the leader and on a follower (403), and
// /v2/stats/self's shape and state on each.
func TestV2ClusterThreeMembers(t *testing.T) {
	ref := v2Reference(t)
	run := func(bin string, extra ...string) []string {
		cl := framework.NewCluster(t, []string{bin}, 3, extra...)
		cl.Start(30 * time.Second)
		lead := cl.Leader(10 * time.Second)
		ms := cl.Members
		order := []*framework.Member{ms[lead], ms[(lead+1)%3], ms[(lead+2)%3]}
		var out []string
		// The list is sorted by ID, which differs between the systems:
		// compare it sorted by name instead.
		resp, err := http.Get(order[0].Client + "/v2/members")
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Members []struct {
				ID, Name             string
				PeerURLs, ClientURLs []string
			}
		}
		json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		sort.Slice(list.Members, func(i, j int) bool { return list.Members[i].Name < list.Members[j].Name })
		for _, m := range list.Members {
			out = append(out, fmt.Sprintf("member %s %v %v", m.Name, m.PeerURLs, m.ClientURLs))
		}
		for i, m := range order {
			lines := v2HTTPRun(t, []*framework.Member{m}, []v2HTTP{
				{method: "GET", path: "/v2/members/leader"},
				{method: "GET", path: "/v2/stats/leader", shape: true},
				{method: "GET", path: "/v2/stats/self", shape: true},
			})
			for j, l := range lines {
				// Member i's own URLs are <client0>; the leader's in
				// members/leader are the leader's.
				if i > 0 && j == 0 {
					l = strings.ReplaceAll(l, ms[lead].Client, "<leader>")
				}
				out = append(out, fmt.Sprintf("m%d %s", i, l))
			}
			resp, err := http.Get(m.Client + "/v2/stats/self")
			if err != nil {
				t.Fatal(err)
			}
			var self struct{ State string }
			json.NewDecoder(resp.Body).Decode(&self)
			resp.Body.Close()
			out = append(out, fmt.Sprintf("m%d state %s", i, self.State))
		}
		for _, m := range ms {
			m.Stop()
			<-m.Done()
		}
		return out
	}
	got := run(framework.Cairn(t))
	want := run(ref, "--enable-v2")
	norm := regexp.MustCompile(`http://127\.0\.0\.\d+:\d+`)
	for i := range want {
		g, w := norm.ReplaceAllString(got[i], "<url>"), norm.ReplaceAllString(want[i], "<url>")
		if g != w {
			t.Errorf("cairn:    %s\netcd 3.4: %s", g, w)
		} else if testing.Verbose() {
			t.Logf("%s", g)
		}
	}
}

// sortMembers orders the members of a /v2/members answer by their
// normalised bytes: both servers list members by ID, and the IDs of members
// added at runtime depend on the second of the add, so the two lists may
// order an added member differently.
func sortMembers(body string) string {
	rest, ok := strings.CutPrefix(body, `{"members":`)
	if !ok {
		return body
	}
	var list struct {
		Members []json.RawMessage `json:"members"`
	}
	if json.Unmarshal([]byte(body), &list) != nil || len(list.Members) < 2 {
		return body
	}
	ms := make([]string, len(list.Members))
	for i, m := range list.Members {
		ms[i] = string(m)
	}
	sort.Strings(ms)
	tail := rest[strings.LastIndex(rest, "]")+1:]
	return `{"members":[` + strings.Join(ms, ",") + "]" + tail
}
