package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	v3c "github.com/cairnkv/cairn/internal/api/v3concurrency"
)

// TestLockElectionServicesAcrossMembers drives the lock and election gRPC
// services (not the client-side recipes) on a 3-member cluster, each call
// on another member: a Lock waits while the lock is held elsewhere and
// returns once another member unlocks it; a cancelled Lock leaves no key;
// Observe on one member streams what Campaign, Proclaim and Resign on the
// others do. CAIRN_RECIPES_ETCD=1 runs it on etcd 3.6.16 too.
func TestLockElectionServicesAcrossMembers(t *testing.T) {
	for name, bin := range recipeTargets(t) {
		t.Run(name, func(t *testing.T) {
			cl, clis := recipeCluster(t, bin)
			var locks []v3c.LockClient
			var elects []v3c.ElectionClient
			for _, m := range cl.Members {
				conn, err := grpc.NewClient(m.Endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close() })
				locks, elects = append(locks, v3c.NewLockClient(conn)), append(elects, v3c.NewElectionClient(conn))
			}
			var leases []int64
			for i := range clis {
				l, err := clis[i].Grant(ctxT(t), 60)
				if err != nil {
					t.Fatal(err)
				}
				leases = append(leases, int64(l.ID))
			}

			// Lock on member 0; member 1 waits; member 2 unlocks.
			held, err := locks[0].Lock(ctxT(t), &v3c.LockRequest{Name: []byte("svc"), Lease: leases[0]})
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("svc/%x", leases[0]); string(held.Key) != want {
				t.Fatalf("lock key %q, want %q", held.Key, want)
			}
			got := make(chan *v3c.LockResponse, 1)
			go func() {
				r, err := locks[1].Lock(ctxLong(t), &v3c.LockRequest{Name: []byte("svc"), Lease: leases[1]})
				if err != nil {
					t.Error(err)
				}
				got <- r
			}()
			waitKeys(t, clis[2], "svc/", 2)
			select {
			case r := <-got:
				t.Fatalf("second Lock returned %v while the lock is held", r)
			default:
			}
			un, err := locks[2].Unlock(ctxT(t), &v3c.UnlockRequest{Key: held.Key})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-got:
				if r == nil || string(r.Key) != fmt.Sprintf("svc/%x", leases[1]) || r.Header.Revision < un.Header.Revision {
					t.Fatalf("waiting Lock returned %v after the unlock at revision %d", r, un.Header.Revision)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("waiting Lock did not return after the unlock")
			}
			// A Lock whose caller gives up leaves no key behind.
			ctx, cancel := context.WithCancel(context.Background())
			gaveUp := make(chan error, 1)
			go func() {
				_, err := locks[2].Lock(ctx, &v3c.LockRequest{Name: []byte("svc"), Lease: leases[2]})
				gaveUp <- err
			}()
			waitKeys(t, clis[0], "svc/", 2)
			// Cancel only once the Lock waits for the holder (the recipe's
			// watch is open on member 2): cancelled while its key's Txn is
			// applied but not yet answered, the recipe (etcd's too) returns
			// without deleting the key, which then lives until its lease ends.
			waitUntil(t, "the cancelled Lock to be waiting", func() bool {
				return metric(t, cl.Members[2], "etcd_debugging_mvcc_watcher_total") >= 1
			})
			cancel()
			if err := <-gaveUp; err == nil {
				t.Fatal("cancelled Lock succeeded")
			}
			waitKeys(t, clis[0], "svc/", 1)

			// Election: observe on member 1, campaign on 0, proclaim on 2,
			// a second campaign on 2 takes over when 1 resigns the first.
			octx, ocancel := context.WithCancel(context.Background())
			defer ocancel()
			obs, err := elects[1].Observe(octx, &v3c.LeaderRequest{Name: []byte("el")})
			if err != nil {
				t.Fatal(err)
			}
			expect := func(val string) {
				t.Helper()
				r, err := obs.Recv()
				if err != nil || string(r.Kv.Value) != val {
					t.Fatalf("observed %v %v, want %q", r, err, val)
				}
			}
			c1, err := elects[0].Campaign(ctxT(t), &v3c.CampaignRequest{Name: []byte("el"), Lease: leases[0], Value: []byte("a")})
			if err != nil {
				t.Fatal(err)
			}
			expect("a")
			if _, err := elects[2].Proclaim(ctxT(t), &v3c.ProclaimRequest{Leader: c1.Leader, Value: []byte("b")}); err != nil {
				t.Fatal(err)
			}
			expect("b")
			next := make(chan error, 1)
			go func() {
				_, err := elects[2].Campaign(ctxLong(t), &v3c.CampaignRequest{Name: []byte("el"), Lease: leases[2], Value: []byte("c")})
				next <- err
			}()
			waitKeys(t, clis[0], "el/", 2)
			if _, err := elects[1].Resign(ctxT(t), &v3c.ResignRequest{Leader: c1.Leader}); err != nil {
				t.Fatal(err)
			}
			if err := <-next; err != nil {
				t.Fatal(err)
			}
			expect("c")
			if _, err := elects[0].Proclaim(ctxT(t), &v3c.ProclaimRequest{Leader: c1.Leader, Value: []byte("stale")}); err == nil ||
				err.Error() != "rpc error: code = Unknown desc = election: not leader" {
				t.Fatalf("proclaim by the resigned leader: %v", err)
			}
		})
	}
}
