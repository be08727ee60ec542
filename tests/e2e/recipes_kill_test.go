package e2e

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestRecipesAcrossLeaderKill: the raft leader's member holds the mutex and
// leads an election through its own client when it is SIGKILLed. Its
// sessions' leases then expire (decided by the new raft leader), so the
// next campaigner, on a surviving member, leads, and the mutex passes to
// workers on the surviving members, which lose no update.
func TestRecipesAcrossLeaderKill(t *testing.T) {
	for name, bin := range recipeTargets(t) {
		t.Run(name, func(t *testing.T) {
			cl, clis := recipeCluster(t, bin)
			lead := cl.Leader(30 * time.Second)
			var alive []*clientv3.Client
			for i, c := range clis {
				if i != lead {
					alive = append(alive, c)
				}
			}
			const election, mutex, counter = "/recipes/ha/election", "/recipes/ha/mutex", "/recipes/ha/counter"
			g := &leaderGuard{t: t}

			// On the doomed member: the election's leader and the mutex's
			// holder, on short leases.
			doomed := session(t, clis[lead], minTTL+1)
			if err := <-campaign(ctxT(t), concurrency.NewElection(doomed, election), "doomed", g, 100); err != nil {
				t.Fatal(err)
			}
			if err := concurrency.NewMutex(doomed, mutex).Lock(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			// Queued campaigners on the surviving members, in order.
			next := campaign(ctxLong(t), concurrency.NewElection(session(t, alive[0], 10), election), "next", g, 1)
			waitKeys(t, alive[0], election+"/", 2)
			last := campaign(ctxLong(t), concurrency.NewElection(session(t, alive[1], 10), election), "last", g, 2)
			waitKeys(t, alive[0], election+"/", 3)
			// Workers on the surviving members wait for the mutex.
			var inside atomic.Int32
			var done, uncertain atomic.Int64
			var wg sync.WaitGroup
			for _, c := range alive {
				for w := 0; w < 2; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := killWorker(ctxLong(t), c, mutex, counter, 5, &inside, &done, &uncertain); err != nil {
							t.Error(err)
						}
					}()
				}
			}
			waitKeys(t, alive[0], mutex+"/", 5)

			g.stepDown(100) // its process dies with the member
			cl.Members[lead].Kill()

			select {
			case err := <-next:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("no new election leader after the leader's member was killed")
			}
			obs := concurrency.NewElection(session(t, alive[1], 10), election)
			if l, err := obs.Leader(ctxT(t)); err != nil || string(l.Kvs[0].Value) != "next" {
				t.Fatalf("leader after the kill: %v %v", l, err)
			}
			select {
			case err := <-last:
				t.Fatalf("third campaigner returned (%v) while the second leads", err)
			default:
			}
			wg.Wait()
			got := readInt(t, alive[0], counter)
			if n, u := int(done.Load()), int(uncertain.Load()); got < n || got > n+u {
				t.Fatalf("counter %d after %d acknowledged increments (%d uncertain)", got, n, u)
			}
			t.Logf("counter %d: %d increments acknowledged, %d uncertain", got, done.Load(), uncertain.Load())
		})
	}
}

// killWorker increments counter n times under the mutex. A lock or read
// that fails (the cluster is electing a leader) is retried; a put that
// fails may or may not have happened, so it is counted as uncertain and
// the worker stops.
func killWorker(ctx context.Context, cli *clientv3.Client, mutex, counter string, n int, inside *atomic.Int32, done, uncertain *atomic.Int64) error {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		return err
	}
	defer s.Close()
	m := concurrency.NewMutex(s, mutex)
	for i := 0; i < n; {
		if err := m.Lock(ctx); err != nil {
			if ctx.Err() != nil {
				return err
			}
			continue
		}
		if k := inside.Add(1); k != 1 {
			return errors.New("two holders of the mutex at once")
		}
		resp, err := cli.Get(ctx, counter)
		if err == nil {
			v := 0
			if len(resp.Kvs) == 1 {
				v, _ = strconv.Atoi(string(resp.Kvs[0].Value))
			}
			if _, err := cli.Put(ctx, counter, strconv.Itoa(v+1)); err != nil {
				uncertain.Add(1)
				inside.Add(-1)
				return nil
			}
			done.Add(1)
			i++
		}
		inside.Add(-1)
		if err := m.Unlock(ctx); err != nil && ctx.Err() != nil {
			return err
		}
	}
	return nil
}
