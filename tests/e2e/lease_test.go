package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// The lease tests run with the members' default timing (heartbeat 100 ms,
// election timeout 1 s): etcd's minimum TTL is then 2 s, and a new leader
// extends every lease by 1 s.
const (
	minTTL      = 2
	electionTTL = time.Second
)

// clientOf returns a client of the given members only.
func clientOf(t *testing.T, ms ...*framework.Member) *clientv3.Client {
	t.Helper()
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.Client)
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// grantWithKeys grants a lease of ttl seconds through c and attaches keys
// prefix/0..n-1 to it; it returns the lease and the revision of the last
// put.
func grantWithKeys(t *testing.T, c *clientv3.Client, ttl int64, prefix string, n int) (clientv3.LeaseID, int64) {
	t.Helper()
	l, err := c.Grant(ctxT(t), ttl)
	if err != nil {
		t.Fatalf("grant: %v", err)
	}
	var rev int64
	for i := 0; i < n; i++ {
		p, err := c.Put(ctxT(t), fmt.Sprintf("%s/%d", prefix, i), "v", clientv3.WithLease(l.ID))
		if err != nil {
			t.Fatalf("put on lease: %v", err)
		}
		rev = p.Header.Revision
	}
	return l.ID, rev
}

// countKeys counts the keys under prefix through c; -1 when the read fails.
func countKeys(c *clientv3.Client, prefix string, opts ...clientv3.OpOption) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	g, err := c.Get(ctx, prefix+"/", append([]clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly()}, opts...)...)
	if err != nil {
		return -1
	}
	return int(g.Count)
}

// keepAlive keeps lease id alive through c until the test ends, counting
// the answers.
func keepAlive(t *testing.T, c *clientv3.Client, id clientv3.LeaseID) (stop func(), answers func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := c.KeepAlive(ctx, id)
	if err != nil {
		cancel()
		t.Fatalf("keep-alive: %v", err)
	}
	n := make(chan int, 1)
	n <- 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := range ch {
			if r.TTL > 0 {
				n <- <-n + 1
			}
		}
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop, func() int { v := <-n; n <- v; return v }
}

// holdFor checks, for d, that the n keys under prefix stay visible through
// c every time a (linearizable) read succeeds; reads fail while there is no
// leader.
func holdFor(t *testing.T, c *clientv3.Client, prefix string, n int, d time.Duration) {
	t.Helper()
	reads := 0
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		switch got := countKeys(c, prefix); got {
		case -1:
		case n:
			reads++
		default:
			t.Fatalf("%d of the %d keys on a kept-alive lease left under %s", got, n, prefix)
		}
	}
	if reads == 0 {
		t.Fatalf("no read of %s succeeded in %v", prefix, d)
	}
}

// Leases in a 3-member cairn cluster: a revoke through one member is seen
// by all, expiry deletes a lease's keys in one revision, and keys on a
// kept-alive lease survive the leader's death.
func TestLeasesInCairnCluster(t *testing.T) {
	c := framework.NewCluster(t, []string{framework.Cairn(t)}, 3)
	c.Start(60 * time.Second)
	lead := c.Leader(10 * time.Second)
	f1, f2 := c.Members[(lead+1)%3], c.Members[(lead+2)%3]

	t.Run("revoked on one member, gone on all", func(t *testing.T) {
		id, _ := grantWithKeys(t, clientOf(t, f1), 600, "revoked", 3)
		st, err := clientOf(t, f2).TimeToLive(ctxT(t), id, clientv3.WithAttachedKeys())
		if err != nil || st.GrantedTTL != 600 || st.TTL < 590 || len(st.Keys) != 3 {
			t.Fatalf("time to live through a follower: %+v, %v", st, err)
		}
		if _, err := clientOf(t, c.Members[lead]).Revoke(ctxT(t), id); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		for _, m := range c.Members {
			mc := clientOf(t, m)
			waitUntil(t, "the revoke to reach "+m.Name, func() bool {
				ls, err := mc.Leases(ctxT(t))
				if err != nil {
					return false
				}
				for _, l := range ls.Leases {
					if l.ID == id {
						return false
					}
				}
				return countKeys(mc, "revoked", clientv3.WithSerializable()) == 0
			})
			st, err := mc.TimeToLive(ctxT(t), id)
			if err != nil || st.TTL != -1 || st.GrantedTTL != 0 {
				t.Fatalf("time to live of a revoked lease through %s: %+v, %v", m.Name, st, err)
			}
			if _, err := mc.KeepAliveOnce(ctxT(t), id); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
				t.Fatalf("keep-alive of a revoked lease through %s: %v", m.Name, err)
			}
		}
	})

	t.Run("expiry deletes all keys in one revision", func(t *testing.T) {
		fc := clientOf(t, f1)
		start := time.Now()
		_, rev := grantWithKeys(t, fc, minTTL, "expiring", 3)
		waitUntil(t, "the lease to expire", func() bool { return countKeys(fc, "expiring") == 0 })
		if took := time.Since(start); took < minTTL*time.Second {
			t.Fatalf("a %ds lease expired after %v", minTTL, took)
		}
		g, err := fc.Get(ctxT(t), "expiring/", clientv3.WithPrefix())
		if err != nil || g.Header.Revision != rev+1 {
			t.Fatalf("revision after expiry %d (%v), want %d: one revision for all keys", g.Header.Revision, err, rev+1)
		}
		if n := countKeys(fc, "expiring", clientv3.WithRev(rev)); n != 3 {
			t.Fatalf("%d keys at revision %d", n, rev)
		}
		sameState(t, c)
	})

	t.Run("kept alive across a leader kill", func(t *testing.T) {
		fc := clientOf(t, f1, f2)
		// The client gives a keep-alive up when no answer comes within the
		// TTL; the election (1-2 s) and the new leader's first apply must
		// fit in that, as with etcd.
		const ttl = 5
		id, _ := grantWithKeys(t, fc, ttl, "alive", 5)
		stop, answers := keepAlive(t, fc, id)
		holdFor(t, fc, "alive", 5, time.Second)
		c.Members[lead].Kill()
		// Past the TTL plus the new leader's extension: an unrenewed lease
		// would be gone.
		holdFor(t, fc, "alive", 5, ttl*time.Second+electionTTL+2*time.Second)
		before := answers()
		waitUntil(t, "keep-alives through the new leader", func() bool { return answers() > before+1 })
		if n := countKeys(fc, "alive"); n != 5 {
			t.Fatalf("%d keys after the leader change", n)
		}
		// Once the keep-alives stop, the new leader expires the lease.
		stop()
		waitUntil(t, "the lease to expire under the new leader", func() bool { return countKeys(fc, "alive") == 0 })
	})
}

// leaseAnswers runs the bad-input requests against one server and returns
// what it answered, one line each.
func leaseAnswers(t *testing.T, m *framework.Member) []string {
	c := m.Client3()
	defer c.Close()
	lc := pb.NewLeaseClient(c.ActiveConnection())
	ctx := ctxT(t)
	var out []string
	add := func(what string, v any, err error) {
		if err != nil {
			v = err.Error()
		}
		out = append(out, fmt.Sprintf("%s: %v", what, v))
	}
	for _, ttl := range []int64{0, -1, 1, 9000000000, 9000000001} {
		r, err := c.Grant(ctx, ttl)
		var v any
		if err == nil {
			v = r.TTL
		}
		add(fmt.Sprintf("grant %d", ttl), v, err)
	}
	r, err := lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 77, TTL: 30})
	add("grant ID 77", r.GetID(), err)
	_, err = lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 77, TTL: 30})
	add("grant ID 77 again", nil, err)
	r, err = lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: -5, TTL: 30})
	add("grant ID -5", r.GetID(), err)
	_, err = c.Revoke(ctx, 12345)
	add("revoke unknown", nil, err)
	st, err := c.TimeToLive(ctx, 12345, clientv3.WithAttachedKeys())
	var v any
	if err == nil {
		v = fmt.Sprintf("ID %d TTL %d granted %d keys %d", st.ID, st.TTL, st.GrantedTTL, len(st.Keys))
	}
	add("time to live unknown", v, err)
	_, err = c.KeepAliveOnce(ctx, 12345)
	add("keep-alive unknown", nil, err)
	_, err = c.Put(ctx, "k", "v", clientv3.WithLease(12345))
	add("put on unknown lease", nil, err)
	_, err = c.Revoke(ctx, 77)
	add("revoke 77", nil, err)
	_, err = c.Revoke(ctx, 77)
	add("revoke 77 again", nil, err)
	return out
}

// Bad input gets etcd's answers: run against etcd 3.6.16 and cairn alike.
func TestLeaseBadInputAsEtcd(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	e := framework.NewMember(t, ref.Etcd, "n1")
	e.StartAndWait(30 * time.Second)
	want := leaseAnswers(t, e)
	got := leaseAnswers(t, startCairn(t))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("cairn answered:\n%s\netcd answered:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("answers:\n%s", strings.Join(want, "\n"))
}

// In a mixed cluster keep-alives and time-to-live questions reach the
// leader over the peer port whichever kind leads: through the cairn member
// while etcd leads, and through an etcd member while cairn leads; expiry
// decided by either leader applies on all, and every member agrees.
func TestLeasesInMixedCluster(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	c := framework.NewCluster(t, []string{ref.Etcd, framework.Cairn(t)}, 3) // etcd, cairn, etcd
	c.Start(60 * time.Second)
	cairnM, etcdM := c.Members[1], c.Members[0]
	moveLeader := func(to int) {
		t.Helper()
		lead := c.Leader(10 * time.Second)
		if lead == to {
			return
		}
		st, err := clientOf(t, c.Members[to]).Status(ctxT(t), c.Members[to].Client)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := clientOf(t, c.Members[lead]).MoveLeader(ctxT(t), st.Header.MemberId); err != nil {
			t.Fatalf("move leader to %s: %v", c.Members[to].Name, err)
		}
		waitUntil(t, c.Members[to].Name+" to lead", func() bool { return c.Leader(10*time.Second) == to })
	}
	check := func(t *testing.T, through *framework.Member, prefix string) {
		mc := clientOf(t, through)
		id, _ := grantWithKeys(t, mc, minTTL, prefix, 3)
		stop, answers := keepAlive(t, mc, id)
		holdFor(t, mc, prefix, 3, 3*minTTL*time.Second)
		if answers() < 3 {
			t.Fatalf("%d keep-alive answers through %s", answers(), through.Name)
		}
		st, err := mc.TimeToLive(ctxT(t), id, clientv3.WithAttachedKeys())
		if err != nil || st.GrantedTTL != minTTL || st.TTL < 0 || len(st.Keys) != 3 {
			t.Fatalf("time to live through %s: %+v, %v", through.Name, st, err)
		}
		stop()
		waitUntil(t, "the lease to expire", func() bool { return countKeys(mc, prefix) == 0 })
	}
	t.Run("etcd leads, cairn forwards", func(t *testing.T) {
		moveLeader(0)
		check(t, cairnM, "etcd-leads")
	})
	t.Run("cairn leads, etcd forwards", func(t *testing.T) {
		moveLeader(1)
		check(t, etcdM, "cairn-leads")
	})
	sameState(t, c)
	// The whole backends agree too, lease bucket included.
	waitUntil(t, "equal backend hashes", func() bool {
		var first uint32
		for i, m := range c.Members {
			h, err := pb.NewMaintenanceClient(clientOf(t, m).ActiveConnection()).Hash(ctxT(t), &pb.HashRequest{})
			if err != nil {
				return false
			}
			if i == 0 {
				first = h.Hash
			} else if h.Hash != first {
				return false
			}
		}
		return true
	})
}

// Leases survive a change of server in both directions: an etcd 3.6 data
// dir started under cairn expires its short lease on time (not before its
// TTL, soon after TTL plus the new leader's extension) and keeps its long
// one, and etcd does the same with a data dir cairn wrote.
func TestLeaseDataDirBothWays(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	const shortTTL = 4
	for _, way := range []struct{ name, from, to string }{
		{"etcd to cairn", ref.Etcd, framework.Cairn(t)},
		{"cairn to etcd", framework.Cairn(t), ref.Etcd},
	} {
		t.Run(way.name, func(t *testing.T) {
			a := framework.NewMember(t, way.from, "n1")
			a.StartAndWait(30 * time.Second)
			ac := a.Client3()
			long, _ := grantWithKeys(t, ac, 3600, "long", 2)
			grantWithKeys(t, ac, shortTTL, "short", 3)
			ac.Close()
			a.Stop()

			b := framework.NewMember(t, way.to, "n1")
			b.DataDir, b.Client, b.Peer = a.DataDir, a.Client, a.Peer
			start := time.Now()
			b.StartAndWait(30 * time.Second)
			ready := time.Now()
			bc := b.Client3()
			defer bc.Close()
			if n := countKeys(bc, "short"); n != 3 && time.Since(start) < shortTTL*time.Second {
				t.Fatalf("%d short-lease keys right after the start", n)
			}
			ls, err := bc.Leases(ctxT(t))
			if err != nil || len(ls.Leases) < 1 {
				t.Fatalf("leases: %+v, %v", ls, err)
			}
			waitUntil(t, "the short lease to expire", func() bool { return countKeys(bc, "short") == 0 })
			gone := time.Now()
			if gone.Sub(start) < shortTTL*time.Second {
				t.Fatalf("a %ds lease expired %v after the start", shortTTL, gone.Sub(start))
			}
			// TTL, the new leader's extension, the 500 ms expiry loop and
			// slack for a loaded machine.
			if late := gone.Sub(ready); late > shortTTL*time.Second+electionTTL+3*time.Second {
				t.Fatalf("a %ds lease expired %v after the server was ready", shortTTL, late)
			}
			st, err := bc.TimeToLive(ctxT(t), long, clientv3.WithAttachedKeys())
			if err != nil || st.GrantedTTL != 3600 || st.TTL < 3500 || len(st.Keys) != 2 || countKeys(bc, "long") != 2 {
				t.Fatalf("long lease: %+v, %v", st, err)
			}
		})
	}
}

// metric reads one un-labelled series from a member's /metrics.
func metric(t *testing.T, m *framework.Member, name string) float64 {
	t.Helper()
	resp, err := http.Get(m.Client + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	mm := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
	if mm == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, err := strconv.ParseFloat(string(mm[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Thousands of leases granted, kept alive once, attached and revoked leave
// neither goroutines nor memory behind, and are counted under etcd's
// metric names.
func TestLeaseChurnLeaksNothing(t *testing.T) {
	m := startCairn(t)
	c := m.Client3()
	defer c.Close()
	round := func(n int) {
		t.Helper()
		errc := make(chan error, 8)
		for w := 0; w < 8; w++ {
			go func(w int) {
				for i := w; i < n; i += 8 {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					l, err := c.Grant(ctx, 60)
					if err == nil {
						_, err = c.Put(ctx, fmt.Sprintf("churn/%d", i), "v", clientv3.WithLease(l.ID))
					}
					if err == nil {
						_, err = c.KeepAliveOnce(ctx, l.ID)
					}
					if err == nil {
						_, err = c.Revoke(ctx, l.ID)
					}
					cancel()
					if err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}(w)
		}
		for w := 0; w < 8; w++ {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
	}
	round(500) // warm up: gRPC streams, buffers, caches
	goroutines := metric(t, m, "go_goroutines")
	heap := metric(t, m, "go_memstats_heap_inuse_bytes")
	for i := 0; i < 3; i++ {
		round(1000)
	}
	if n := countKeys(c, "churn"); n != 0 {
		t.Fatalf("%d keys left", n)
	}
	ls, err := c.Leases(ctxT(t))
	if err != nil || len(ls.Leases) != 0 {
		t.Fatalf("leases left: %d, %v", len(ls.Leases), err)
	}
	// Streams and handlers wind down asynchronously.
	waitUntil(t, "goroutines to settle", func() bool { return metric(t, m, "go_goroutines") <= goroutines+10 })
	if h := metric(t, m, "go_memstats_heap_inuse_bytes"); h > heap+32<<20 {
		t.Fatalf("heap in use grew from %.0f to %.0f bytes over 3000 leases", heap, h)
	}
	for name, want := range map[string]float64{
		"etcd_debugging_lease_granted_total":        3500,
		"etcd_debugging_lease_revoked_total":        3500,
		"etcd_debugging_lease_renewed_total":        3500,
		"etcd_debugging_lease_ttl_total_count":      3500,
		"etcd_debugging_server_lease_expired_total": 0,
	} {
		if got := metric(t, m, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}
