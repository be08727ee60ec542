package e2e

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// Runtime reconfiguration with real processes: the seed procedures
// (growing 3→5 and shrinking back under load, replacing a dead member,
// moving a member to another address with its data dir), the refusals
// (bad input, the pitfall of adding to a cluster with a dead member), and
// the same changes in mixed etcd/cairn clusters led by either.
//
// By default these run on cairn (with cairnctl) only, within about two
// minutes; CAIRN_RECONFIG_FULL=1 also runs the procedures on etcd 3.6.16
// with etcdctl, to check the tests themselves against the reference.

type reconfigTarget struct{ name, bin, ctl string }

func reconfigTargets(t *testing.T) []reconfigTarget {
	out := []reconfigTarget{{"cairn", framework.Cairn(t), framework.Cairnctl(t)}}
	if os.Getenv("CAIRN_RECONFIG_FULL") != "" {
		ref := refs.EtcdRelease(t, refs.Default)
		out = append(out, reconfigTarget{"etcd-" + refs.Default, ref.Etcd, ref.Etcdctl})
	}
	return out
}

// removedLines are what a member logs when it learns it was removed.
var removedLines = []string{"the member has been permanently removed from the cluster", "data-dir used by this member must be removed"}

func checkRemovedLog(t *testing.T, m *framework.Member) {
	t.Helper()
	for _, l := range removedLines {
		if !strings.Contains(m.Log(), l) {
			t.Errorf("%s did not log %q:\n%s", m.Name, l, m.Log())
		}
	}
}

// Seed 001: a loaded 3-member cluster grows to 5 (a learner that catches
// up and is promoted, then a voter, each started with the ETCD_* settings
// `member add` printed) and shrinks back to 3 (a follower, then the
// leader). No acknowledged write is lost and all members end alike.
func TestReconfigGrowAndShrinkUnderLoad(t *testing.T) {
	for _, tg := range reconfigTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			c := framework.NewCluster(t, []string{tg.bin}, 3, reconfigExtra...)
			c.Start(60 * time.Second)
			logsOnFailure(t, c.Members...)
			cl := c.Client()
			defer cl.Close()
			lw, stopLoad := startLoadT(t, cl, 4)
			waitUntil(t, "load before growing", func() bool { return lw.count() > 100 })
			via := c.Members[0].Client

			// A learner first: it catches up without counting toward the
			// quorum, and refuses what a learner must not serve.
			m4 := newMember(t, tg.bin, "m4", "127.0.0.4")
			logsOnFailure(t, m4)
			id4 := addMember(t, tg.ctl, via, m4, true)
			m4.Start()
			lc := m4.Client3()
			pollUntil(t, "the learner to serve serializable reads", func() bool {
				_, err := lc.Get(ctxT(t), "load/", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable())
				return err == nil
			})
			if _, err := lc.Get(ctxT(t), "load/", clientv3.WithCountOnly()); err == nil || !strings.Contains(err.Error(), "etcdserver: rpc not supported for learner") {
				t.Errorf("linearizable read on a learner: %v", err)
			}
			if _, err := lc.Put(ctxT(t), "x", "y"); err == nil || !strings.Contains(err.Error(), "etcdserver: rpc not supported for learner") {
				t.Errorf("write on a learner: %v", err)
			}
			lc.Close()
			if code, body := httpGet(t, m4.Client+"/readyz"); code != 503 || !strings.Contains(body, "[-]non_learner failed: not supported for learner") {
				t.Errorf("/readyz on a learner: %d %q", code, body)
			}
			// Through a follower, which forwards the promotion to the leader.
			follower := c.Members[(c.Leader(20*time.Second)+1)%3]
			promoteWhenReady(t, tg.ctl, follower.Client, id4)
			m4.WaitReady(60 * time.Second)
			joinedBySnapshot(t, m4)
			c.Members = append(c.Members, m4)

			m5 := newMember(t, tg.bin, "m5", "127.0.0.5")
			logsOnFailure(t, m5)
			addMember(t, tg.ctl, via, m5, false)
			m5.Start()
			m5.WaitReady(60 * time.Second)
			joinedBySnapshot(t, m5)
			c.Members = append(c.Members, m5)
			before := lw.count()
			waitUntil(t, "writes with five members", func() bool { return lw.count() > before+100 })
			for _, m := range c.Members {
				ms := members(t, m)
				if len(ms) != 5 || slices.ContainsFunc(slices.Collect(maps.Values(ms)), func(mm *clientv3.Member) bool { return mm.IsLearner || mm.Name == "" }) {
					t.Fatalf("%s lists %s", m.Name, memberSetString(ms))
				}
			}

			// Shrink: a follower (one of the new members), then the leader.
			// cairn's leader is asked to remove itself: it hands leadership
			// over first and answers. etcd's would stop before answering
			// ("server stopped") as its peers refuse it, so etcd's is asked
			// through another member.
			lead := c.Leader(20 * time.Second)
			f := 3
			if lead == f {
				f = 4
			}
			fm := c.Members[f]
			ctlWhenHealthy(t, tg.ctl, c.Members[lead].Client, "member", "remove", fmt.Sprintf("%x", memberID(t, fm)))
			if code := waitExit(t, fm, 20*time.Second); code != 0 {
				t.Errorf("removed %s exited %d", fm.Name, code)
			}
			checkRemovedLog(t, fm)
			c.Members = slices.Delete(c.Members, f, f+1)

			lead = c.Leader(20 * time.Second)
			lm := c.Members[lead]
			leadID := memberID(t, lm)
			asked := lm
			if tg.name != "cairn" {
				asked = c.Members[(lead+1)%len(c.Members)]
			}
			ctlWhenHealthy(t, tg.ctl, asked.Client, "member", "remove", fmt.Sprintf("%x", leadID))
			if code := waitExit(t, lm, 20*time.Second); code != 0 {
				t.Errorf("removed leader %s exited %d", lm.Name, code)
			}
			checkRemovedLog(t, lm)
			if tg.name == "cairn" && !strings.Contains(lm.Log(), "handing over leadership before removing the leader") {
				t.Errorf("the leader did not hand over leadership before its removal:\n%s", lm.Log())
			}
			c.Members = slices.Delete(c.Members, lead, lead+1)
			newLead := c.Leader(20 * time.Second)
			if memberID(t, c.Members[newLead]) == leadID {
				t.Fatal("the removed member still leads")
			}

			before = lw.count()
			waitUntil(t, "writes with three members", func() bool { return lw.count() > before+100 })
			stopLoad()
			for _, m := range c.Members {
				if n := len(members(t, m)); n != 3 {
					t.Fatalf("%s lists %d members", m.Name, n)
				}
				lw.checkAllAcked(t, m)
			}
			sameState(t, c)
			t.Logf("%d writes acknowledged, %d failed (retried)", lw.count(), lw.errs)
		})
	}
}

// Bad input is refused with etcd's errors and changes nothing; adding a
// member while one of three is dead (seed 003's pitfall) is refused with
// a reason naming the dead member; the dead member is replaced (removed
// first, then the new one added); the removed member cannot come back on
// its old data dir; and a member moves to another address with its data
// dir (seed 000 §3.1).
func TestReconfigRefusalsAndRepairs(t *testing.T) {
	for _, tg := range reconfigTargets(t) {
		t.Run(tg.name, func(t *testing.T) { refusalsAndRepairs(t, tg) })
	}
}

func refusalsAndRepairs(t *testing.T, tg reconfigTarget) {
	c := framework.NewCluster(t, []string{tg.bin}, 3, reconfigExtra...)
	c.Start(60 * time.Second)
	m1, m2, m3 := c.Members[0], c.Members[1], c.Members[2]
	logsOnFailure(t, m1, m2, m3)
	id2, id3 := memberID(t, m2), memberID(t, m3)
	via := m1.Client
	putThrough(t, m1, "before", "changes")
	set := memberSetString(members(t, m1))
	unchanged := func(what string) {
		t.Helper()
		if got := memberSetString(members(t, m1)); got != set {
			t.Fatalf("%s changed the member set: %s, was %s", what, got, set)
		}
	}
	// refused runs a change that must fail with want (after any "unhealthy
	// cluster" refusals while peer connections are young).
	refused := func(want string, args ...string) {
		t.Helper()
		var errOut string
		pollUntil(t, fmt.Sprintf("%q to be refused", args), func() bool {
			out, e, code := ctlRun(t, tg.ctl, via, args...)
			if code == 0 {
				t.Fatalf("%q succeeded: %s", args, out)
			}
			errOut = e
			return want == "Error: etcdserver: unhealthy cluster" || !strings.Contains(e, "unhealthy cluster")
		})
		if got := lastLine(errOut); got != want {
			t.Errorf("%q: %q, want %q", args, got, want)
		}
		unchanged(fmt.Sprint(args))
	}
	newURL := "http://127.0.0.9:" + fmt.Sprint(framework.FreePort(t, "127.0.0.9"))
	refused("Error: etcdserver: member not found", "member", "remove", "1")
	refused("Error: etcdserver: member not found", "member", "update", "1", "--peer-urls="+newURL)
	refused("Error: etcdserver: member not found", "member", "promote", "1")
	refused(`Error: parse "127.0.0.9:1": first path segment in URL cannot contain colon`, "member", "add", "x", "--peer-urls=127.0.0.9:1")
	refused("Error: URL must not contain a path: http://127.0.0.9:1/p", "member", "add", "x", "--peer-urls=http://127.0.0.9:1/p")
	refused("Error: etcdserver: Peer URLs already exists", "member", "add", "x", "--peer-urls="+m2.Peer)
	refused("Error: etcdserver: Peer URLs already exists", "member", "update", fmt.Sprintf("%x", id2), "--peer-urls="+m3.Peer)
	refused("Error: etcdserver: can only promote a learner member", "member", "promote", fmt.Sprintf("%x", id2))

	// One learner at a time; a removed ID never returns (a runtime
	// member's ID comes from its URLs and the second it was added in, so
	// the same URL added again within the second names the removed ID).
	lurl := "http://127.0.0.8:" + fmt.Sprint(framework.FreePort(t, "127.0.0.8"))
	out := ctlWhenHealthy(t, tg.ctl, via, "member", "add", "l", "--learner", "--peer-urls="+lurl)
	lid, _, err := parseMemberAdd(out)
	if err != nil {
		t.Fatal(err)
	}
	refused2 := func(want string, args ...string) {
		t.Helper()
		_, errOut, code := ctlRun(t, tg.ctl, via, args...)
		if code == 0 || lastLine(errOut) != want {
			t.Errorf("%q: exit %d %q, want %q", args, code, lastLine(errOut), want)
		}
	}
	refused2("Error: etcdserver: too many learner members in cluster", "member", "add", "l2", "--learner", "--peer-urls="+newURL)
	refused2("Error: etcdserver: can only promote a learner member which is in sync with leader", "member", "promote", fmt.Sprintf("%x", lid))
	for attempt := 0; ; attempt++ {
		mustCtl(t, tg.ctl, via, "member", "remove", fmt.Sprintf("%x", lid))
		out, errOut, code := ctlRun(t, tg.ctl, via, "member", "add", "l", "--learner", "--peer-urls="+lurl)
		if code != 0 {
			if lastLine(errOut) != "Error: etcdserver: member not found" {
				t.Fatalf("re-adding removed ID %x: %s", lid, errOut)
			}
			break
		}
		// The second changed in between: a new ID; remove it and retry.
		if lid, _, err = parseMemberAdd(out); err != nil || attempt == 5 {
			t.Fatalf("re-adding a removed ID: %q %v", out, err)
		}
	}
	unchanged("the learner's life")

	// Seed 003's pitfall. Adding a voter needs every one of three peers
	// connected: once a learner add is accepted, they are (it is removed
	// again), then m3 dies.
	probe := "http://127.0.0.8:" + fmt.Sprint(framework.FreePort(t, "127.0.0.8"))
	pid, _, err := parseMemberAdd(ctlWhenHealthy(t, tg.ctl, via, "member", "add", "probe", "--learner", "--peer-urls="+probe))
	if err != nil {
		t.Fatal(err)
	}
	mustCtl(t, tg.ctl, via, "member", "remove", fmt.Sprintf("%x", pid))
	inactive := fmt.Sprintf(`"peer became inactive (message send to peer failed)","peer-id":"%x"`, id3)
	n := strings.Count(m1.Log(), inactive)
	m3.Kill()
	waitUntil(t, "m1 to see m3 down", func() bool { return strings.Count(m1.Log(), inactive) > n })
	c.Leader(20 * time.Second) // m1 and m2 agree on a leader (m3 may have led)
	refused("Error: etcdserver: unhealthy cluster", "member", "add", "m4", "--peer-urls="+newURL)
	if tg.name == "cairn" {
		want := fmt.Sprintf("not connected: m3 (%x)", id3)
		log := m1.Log()
		if !strings.Contains(log, "rejecting member add request; local member has not been connected to majority peers") ||
			!strings.Contains(log, want) || !strings.Contains(log, fmt.Sprintf("remove it first (`member remove %x`)", id3)) {
			t.Errorf("m1's log does not explain the refusal (%q):\n%s", want, log)
		}
	}

	// Replacing the dead member: remove it first, then add the new one.
	mustCtl(t, tg.ctl, via, "member", "remove", fmt.Sprintf("%x", id3))
	writeMany(t, m1, "before-replacement/", 120)
	m4 := newMember(t, tg.bin, "m4", "127.0.0.4")
	logsOnFailure(t, m4)
	addMember(t, tg.ctl, via, m4, false)
	m4.Start()
	m4.WaitReady(60 * time.Second)
	joinedBySnapshot(t, m4)
	c.Members = []*framework.Member{m1, m2, m4}
	putThrough(t, m4, "after", "replacement")

	// The removed member cannot come back on its old data dir.
	m3.Start()
	if code := waitExit(t, m3, 30*time.Second); code == 0 && tg.name == "cairn" {
		t.Errorf("restarted removed member exited 0, want 1 (as etcd 3.6.16 does while starting)")
	}
	checkRemovedLog(t, m3)

	// Seed 000 §3.1: m2 moves to 127.0.0.7 with a copy of its data dir.
	m2.Stop()
	c.Leader(20 * time.Second) // the others agree on a leader (m2 may have led)
	dir := filepath.Join(t.TempDir(), "m2-moved.etcd")
	if err := os.CopyFS(dir, os.DirFS(m2.DataDir)); err != nil {
		t.Fatal(err)
	}
	moved := "http://127.0.0.7:" + fmt.Sprint(framework.FreePort(t, "127.0.0.7"))
	if out := mustCtl(t, tg.ctl, via, "member", "update", fmt.Sprintf("%x", id2), "--peer-urls="+moved); !strings.Contains(out, "updated in cluster") {
		t.Fatalf("member update printed %q", out)
	}
	m2.DataDir, m2.Peer, m2.Host = dir, moved, "127.0.0.7"
	m2.Client = fmt.Sprintf("http://127.0.0.7:%d", framework.FreePort(t, "127.0.0.7"))
	m2.Start()
	m2.WaitReady(60 * time.Second)
	if got := memberID(t, m2); got != id2 {
		t.Fatalf("moved member reports ID %x, want %x", got, id2)
	}
	mc := m2.Client3()
	g, err := mc.Get(ctxT(t), "before", clientv3.WithSerializable())
	mc.Close()
	if err != nil || len(g.Kvs) != 1 || string(g.Kvs[0].Value) != "changes" {
		t.Fatalf("moved member's own data: %v %v", g, err)
	}
	if ms := members(t, m1); !slices.Equal(ms[id2].PeerURLs, []string{moved}) {
		t.Fatalf("member list after the move: %s", memberSetString(ms))
	}
	putThrough(t, m2, "after", "move")
	sameState(t, c)
}

// Mixed etcd 3.6.16 / cairn clusters (etcd, cairn, etcd). With etcd
// leading: a cairn learner is added through the cairn member, promoted
// through it (cairn forwards the promotion to etcd's leader over the peer
// port), and the etcd leader is removed through the cairn member, which
// has leadership handed to itself first. With cairn leading: an etcd
// learner is added and promoted through an etcd member (etcd forwards the
// promotion to cairn), and the cairn leader is removed through that etcd
// member, under write load. No acknowledged write is lost.
//
// Each added member joins from a snapshot (reconfigExtra: small
// snapshots): the cairn learner from the etcd leader after 120 writes, the
// etcd learner from the cairn leader under load.
func TestReconfigMixed(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	cairn, cairnctl := framework.Cairn(t), framework.Cairnctl(t)
	c := framework.NewCluster(t, []string{ref.Etcd, cairn}, 3, reconfigExtra...)
	c.Start(60 * time.Second)
	m1, m2, m3 := c.Members[0], c.Members[1], c.Members[2]

	// etcd leads.
	moveLeaderTo(t, c, 0)
	writeMany(t, m1, "etcd-leads/", 120)
	m4 := newMember(t, cairn, "m4", "127.0.0.4")
	logsOnFailure(t, m1, m2, m3, m4)
	id4 := addMember(t, cairnctl, m2.Client, m4, true)
	m4.Start()
	promoteWhenReady(t, cairnctl, m2.Client, id4)
	m4.WaitReady(60 * time.Second)
	joinedBySnapshot(t, m4)
	c.Members = append(c.Members, m4)
	putThrough(t, m4, "mixed/etcd-leads", "ok")
	ctlWhenHealthy(t, cairnctl, m2.Client, "member", "remove", fmt.Sprintf("%x", memberID(t, m1)))
	if code := waitExit(t, m1, 20*time.Second); code != 0 {
		t.Errorf("removed etcd leader exited %d", code)
	}
	checkRemovedLog(t, m1)
	if !strings.Contains(m2.Log(), "handing over leadership before removing the leader") {
		t.Errorf("cairn did not have leadership handed over before removing the leader:\n%s", m2.Log())
	}
	c.Members = []*framework.Member{m2, m3, m4}

	// cairn leads (m2 took over, or is made to).
	moveLeaderTo(t, c, 0)
	cl := c.Client()
	defer cl.Close()
	lw, stopLoad := startLoadT(t, cl, 2)
	waitUntil(t, "load with cairn leading", func() bool { return lw.count() > 100 })
	m5 := newMember(t, ref.Etcd, "m5", "127.0.0.5")
	logsOnFailure(t, m5)
	id5 := addMember(t, ref.Etcdctl, m3.Client, m5, true)
	m5.Start()
	promoteWhenReady(t, ref.Etcdctl, m3.Client, id5)
	m5.WaitReady(60 * time.Second)
	joinedBySnapshot(t, m5)
	c.Members = append(c.Members, m5)
	putThrough(t, m5, "mixed/cairn-leads", "ok")
	ctlWhenHealthy(t, ref.Etcdctl, m3.Client, "member", "remove", fmt.Sprintf("%x", memberID(t, m2)))
	if code := waitExit(t, m2, 20*time.Second); code != 0 {
		t.Errorf("removed cairn leader exited %d", code)
	}
	checkRemovedLog(t, m2)
	c.Members = []*framework.Member{m3, m4, m5}
	before := lw.count()
	waitUntil(t, "writes after the cairn leader left", func() bool { return lw.count() > before+50 })
	stopLoad()
	for _, m := range c.Members {
		if n := len(members(t, m)); n != 3 {
			t.Fatalf("%s lists %d members", m.Name, n)
		}
		lw.checkAllAcked(t, m)
	}
	sameState(t, c)
}
