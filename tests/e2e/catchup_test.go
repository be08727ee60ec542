package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// A member stopped while the others take more than --snapshot-count writes
// (and more than --snapshot-catchup-entries beyond the snapshot) can only
// catch up by a snapshot of the leader's state: on restart it gets one,
// installs it while it keeps answering reads, and ends with the same
// revision and HashKV as the others (and the leases, which it knows at once
// and can revoke); a second restart keeps it. Runs on
// cairn, on etcd (keeping the test honest) and on mixed clusters in both
// directions (an etcd leader sending to cairn, a cairn leader to etcd).
func TestCatchUpBySnapshot(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	cairn := framework.Cairn(t)
	for _, tc := range []struct {
		name string
		bins []string // member i runs bins[i]; the last member is the one stopped
	}{
		{"cairn", []string{cairn, cairn, cairn}},
		{"etcd", []string{ref.Etcd, ref.Etcd, ref.Etcd}},
		{"etcd leader to cairn", []string{ref.Etcd, ref.Etcd, cairn}},
		{"cairn leader to etcd", []string{cairn, cairn, ref.Etcd}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := framework.NewCluster(t, tc.bins, 3, "--snapshot-count", "100", "--snapshot-catchup-entries", "20")
			c.Start(60 * time.Second)
			lagger := c.Members[2]
			lagger.Stop()
			cl := c.Members[0].Client3()
			defer cl.Close()
			for i := 0; i < 400; i++ {
				// A retried write, as a client does across a leader change (a
				// loaded machine may see one while a member is down).
				k, v := fmt.Sprintf("k%04d", i%150), fmt.Sprintf("v%d", i)
				waitUntil(t, "put "+k, func() bool {
					_, err := cl.Put(ctxTimeout(t, 5*time.Second), k, v)
					return err == nil
				})
			}
			// (after the puts: the cluster has its new leader by now)
			if _, err := pb.NewLeaseClient(cl.ActiveConnection()).LeaseGrant(ctxT(t), &pb.LeaseGrantRequest{ID: 0xabc, TTL: 3600}); err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Put(ctxT(t), "leased", "v", clientv3.WithLease(0xabc)); err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Compact(ctxT(t), 200); err != nil {
				t.Fatal(err)
			}
			lagger.Start()
			lagger.WaitReady(60 * time.Second)
			sameState(t, c)
			lc := lagger.Client3()
			g, err := lc.Get(ctxT(t), "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil || g.Count != 150 {
				t.Fatalf("lagging member after catch-up: %v %v", g, err)
			}
			// The snapshot brought the lease: the member lists it from its own
			// state, and a revoke through it deletes the key everywhere.
			ls, err := lc.Leases(ctxT(t))
			if err != nil || len(ls.Leases) != 1 || ls.Leases[0].ID != 0xabc {
				t.Fatalf("leases on the lagging member after catch-up: %+v %v", ls, err)
			}
			if _, err := lc.Revoke(ctxT(t), 0xabc); err != nil {
				t.Fatalf("revoke through the lagging member: %v", err)
			}
			lc.Close()
			if g, err := cl.Get(ctxT(t), "leased"); err != nil || g.Count != 0 {
				t.Fatalf("leased key after the revoke: %v %v", g, err)
			}
			if tc.bins[2] == cairn && !lagger.WaitLog("applied snapshot", time.Second) {
				t.Fatalf("the lagging member did not catch up by snapshot:\n%s", lagger.Log())
			}
			if tc.bins[2] == cairn {
				// Its publish entry was in the snapshot more often than not:
				// the member is ready at the install, not a request timeout
				// (7 s here) later when its proposal's waiter gives up.
				installed := logTime(t, lagger.Log(), "applied snapshot", time.Time{})
				// (the log holds the member's first run too)
				restarted := logTime(t, lagger.Log(), "received signal; shutting down", time.Time{})
				published := logTime(t, lagger.Log(), "published local member to cluster through raft", restarted)
				if d := published.Sub(installed); d > 3*time.Second {
					t.Errorf("published %v after the snapshot was installed", d)
				}
			}
			lagger.Stop()
			lagger.Start()
			lagger.WaitReady(60 * time.Second)
			sameState(t, c)
		})
	}
}

// logTime is the time of the first log line, not before after, whose
// message is msg.
func logTime(t *testing.T, log, msg string, after time.Time) time.Time {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		var l struct {
			TS  string `json:"ts"`
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &l) != nil || l.Msg != msg {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, l.TS)
		if err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if !ts.Before(after) {
			return ts
		}
	}
	t.Fatalf("no log line %q", msg)
	return time.Time{}
}
