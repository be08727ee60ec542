package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
)

// reconfigExtra are the flags every member of the reconfiguration tests
// runs with: small snapshots (every 50 applied entries, keeping 10 entries
// for slow followers), so that the raft log is compacted early and a
// member added at runtime joins by receiving the leader's snapshot (the
// tests check the "received and saved database snapshot" line), cairn's
// from cairn, etcd's from etcd, and across the two in the mixed test.
var reconfigExtra = []string{"--snapshot-count=50", "--snapshot-catchup-entries=10"}

// joinedBySnapshot fails the test unless m, a member added at runtime,
// received a database snapshot from the leader (the line etcd and cairn
// both log).
func joinedBySnapshot(t *testing.T, m *framework.Member) {
	t.Helper()
	if !strings.Contains(m.Log(), `"msg":"received and saved database snapshot"`) {
		t.Errorf("%s did not join by receiving a snapshot:\n%s", m.Name, m.Log())
	}
}

// writeMany puts n keys under prefix through m, enough for the leader to
// take a snapshot and compact its log (reconfigExtra).
func writeMany(t *testing.T, m *framework.Member, prefix string, n int) {
	t.Helper()
	c := m.Client3()
	defer c.Close()
	for i := 0; i < n; i++ {
		if _, err := c.Put(ctxT(t), fmt.Sprintf("%s%03d", prefix, i), "v"); err != nil {
			t.Fatalf("put through %s: %v", m.Name, err)
		}
	}
}

// ctlRun runs a command line client (cairnctl or etcdctl) against ep.
func ctlRun(t *testing.T, bin, ep string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return framework.Run(t, nil, "", bin, append([]string{"--endpoints=" + ep, "--command-timeout=15s"}, args...)...)
}

// mustCtl is ctlRun failing the test unless the command succeeds.
func mustCtl(t *testing.T, bin, ep string, args ...string) string {
	t.Helper()
	out, errOut, code := ctlRun(t, bin, ep, args...)
	if code != 0 {
		t.Fatalf("%s %q: exit %d\n%s%s", bin, args, code, out, errOut)
	}
	return out
}

// lastLine is the last line of a client's stderr (its "Error: ..." line).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// newMember prepares a member at host that joins through `member add`
// output: only its own URLs and data dir are flags; its name, the initial
// cluster and state come from the ETCD_* lines (see addMember).
func newMember(t *testing.T, bin, name, host string) *framework.Member {
	t.Helper()
	m := framework.NewMember(t, bin, name)
	m.Host = host
	m.Client = fmt.Sprintf("http://%s:%d", host, framework.FreePort(t, host))
	m.Peer = fmt.Sprintf("http://%s:%d", host, framework.FreePort(t, host))
	m.OverrideArgs = append([]string{
		"--data-dir", m.DataDir,
		"--listen-client-urls", m.Client, "--advertise-client-urls", m.Client,
		"--listen-peer-urls", m.Peer,
	}, reconfigExtra...)
	return m
}

// addMember runs `<ctl> member add` through the member serving via for m
// (a learner if asked) and gives m the printed ETCD_* settings as its
// environment, as the seed procedures do. It returns the new member's ID.
func addMember(t *testing.T, ctl, via string, m *framework.Member, learner bool) uint64 {
	t.Helper()
	args := []string{"member", "add", m.Name, "--peer-urls=" + m.Peer}
	if learner {
		args = append(args, "--learner")
	}
	out := ctlWhenHealthy(t, ctl, via, args...)
	id, env, err := parseMemberAdd(out)
	if err != nil {
		t.Fatalf("member add printed %q: %v", out, err)
	}
	m.Env = env
	return id
}

// parseMemberAdd reads `member add`'s simple output: the ID from the first
// line, and the ETCD_* lines as environment entries.
func parseMemberAdd(out string) (uint64, []string, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	f := strings.Fields(lines[0])
	if len(f) < 3 || f[0] != "Member" {
		return 0, nil, errors.New("no Member line")
	}
	id, err := strconv.ParseUint(f[1], 16, 64)
	if err != nil {
		return 0, nil, err
	}
	var env []string
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(k, "ETCD_") {
			continue
		}
		uv, err := strconv.Unquote(v)
		if err != nil {
			return 0, nil, fmt.Errorf("%s: %w", l, err)
		}
		env = append(env, k+"="+uv)
	}
	if len(env) != 4 {
		return 0, nil, fmt.Errorf("%d ETCD_* lines, want 4", len(env))
	}
	return id, env, nil
}

// promoteWhenReady promotes learner id through via, retrying while the
// leader finds it not yet in sync.
func promoteWhenReady(t *testing.T, ctl, via string, id uint64) {
	t.Helper()
	pollUntil(t, fmt.Sprintf("learner %x to be promoted", id), func() bool {
		out, errOut, code := ctlRun(t, ctl, via, "member", "promote", fmt.Sprintf("%x", id))
		if code == 0 {
			if !strings.Contains(out, "promoted in cluster") {
				t.Fatalf("promote printed %q", out)
			}
			return true
		}
		if !strings.Contains(errOut, "in sync with leader") {
			t.Fatalf("promote %x through %s: %s", id, via, errOut)
		}
		return false
	})
}

// ctlWhenHealthy runs a member change that the strict check may refuse
// with "unhealthy cluster" while peer connections are younger than 5 s,
// again until it is accepted. A refused change changes nothing.
func ctlWhenHealthy(t *testing.T, ctl, via string, args ...string) string {
	t.Helper()
	var out string
	pollUntil(t, fmt.Sprintf("%q to be accepted", args), func() bool {
		o, errOut, code := ctlRun(t, ctl, via, args...)
		if code == 0 {
			out = o
			return true
		}
		if !strings.Contains(errOut, "unhealthy cluster") {
			t.Fatalf("%s %q: exit %d\n%s%s", ctl, args, code, o, errOut)
		}
		return false
	})
	return out
}

// pollUntil evaluates cond every 250 ms until it holds, failing the test
// after 30 s. The conditions run commands, so it polls less often than
// waitUntil.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// members returns the member list as m reports it (serializable, so a
// member without quorum answers too), keyed by ID.
func members(t *testing.T, m *framework.Member) map[uint64]*clientv3.Member {
	t.Helper()
	c := m.Client3()
	defer c.Close()
	ml, err := c.MemberList(ctxT(t), clientv3.WithSerializable())
	if err != nil {
		t.Fatalf("member list through %s: %v", m.Name, err)
	}
	out := map[uint64]*clientv3.Member{}
	for _, mm := range ml.Members {
		out[mm.ID] = (*clientv3.Member)(mm)
	}
	return out
}

// memberSetString renders a member list for comparisons.
func memberSetString(ms map[uint64]*clientv3.Member) string {
	var out []string
	for id, m := range ms {
		out = append(out, fmt.Sprintf("%x:%s:%v:%v", id, m.Name, m.PeerURLs, m.IsLearner))
	}
	return strings.Join(sortedStrings(out), " ")
}

func sortedStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

// memberID is the ID m reports for itself.
func memberID(t *testing.T, m *framework.Member) uint64 {
	t.Helper()
	c := m.Client3()
	defer c.Close()
	st, err := c.Status(ctxT(t), m.Client)
	if err != nil {
		t.Fatalf("status of %s: %v", m.Name, err)
	}
	return st.Header.MemberId
}

// moveLeaderTo makes c.Members[i] the leader.
func moveLeaderTo(t *testing.T, c *framework.Cluster, i int) {
	t.Helper()
	lead := c.Leader(20 * time.Second)
	if lead == i {
		return
	}
	lc := c.Members[lead].Client3()
	defer lc.Close()
	if _, err := lc.MoveLeader(ctxT(t), memberID(t, c.Members[i])); err != nil {
		t.Fatalf("move leader to %s: %v", c.Members[i].Name, err)
	}
	waitUntil(t, c.Members[i].Name+" to lead", func() bool { return c.Leader(10*time.Second) == i })
}

// waitExit waits until m's process has exited and returns its exit code.
func waitExit(t *testing.T, m *framework.Member, timeout time.Duration) int {
	t.Helper()
	select {
	case <-m.Done():
	case <-time.After(timeout):
		t.Fatalf("%s still runs after %v\n%s", m.Name, timeout, m.Log())
	}
	var ee *exec.ExitError
	if err := m.ExitErr(); errors.As(err, &ee) {
		return ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	return 0
}

// startLoadT is startLoad whose writers also stop when the test ends; the
// returned function stops them earlier (it may be called more than once).
func startLoadT(t *testing.T, cl *clientv3.Client, writers int) (*loadWriter, func()) {
	lw := startLoad(cl, writers)
	var once sync.Once
	stop := func() { once.Do(lw.finish) }
	t.Cleanup(stop)
	return lw, stop
}

// logsOnFailure prints the end of each member's log if the test fails.
func logsOnFailure(t *testing.T, ms ...*framework.Member) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, m := range ms {
			log := m.Log()
			if len(log) > 6000 {
				log = log[len(log)-6000:]
			}
			t.Logf("--- %s (%s) log ends:\n%s", m.Name, filepath.Base(m.Bin), log)
		}
	})
}

// httpGet returns the status and body of a GET.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// putThrough writes key=val through m and fails the test on error.
func putThrough(t *testing.T, m *framework.Member, key, val string) {
	t.Helper()
	c := m.Client3()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, key, val); err != nil {
		t.Fatalf("put through %s: %v", m.Name, err)
	}
}
