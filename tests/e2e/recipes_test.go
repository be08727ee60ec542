package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// The recipes of go.etcd.io/etcd/client/v3/concurrency (Session, Mutex,
// Election, STM) on a 3-member cluster, with one client per member and
// several goroutines per client contending. Each scenario is written once
// and runs against cairn, and against etcd 3.6.16 with
// CAIRN_RECIPES_ETCD=1, which shows the scenario holds on the reference
// (so a failure on cairn is cairn's).

// recipeTargets are the servers the recipe scenarios run on.
func recipeTargets(t *testing.T) map[string]string {
	bins := map[string]string{"cairn": framework.Cairn(t)}
	if os.Getenv("CAIRN_RECIPES_ETCD") != "" {
		bins["etcd"] = refs.EtcdRelease(t, refs.Default).Etcd
	}
	return bins
}

// recipeCluster starts a 3-member cluster of bin and returns it with one
// client per member (each knows only its member).
func recipeCluster(t *testing.T, bin string) (*framework.Cluster, []*clientv3.Client) {
	t.Helper()
	cl := framework.NewCluster(t, []string{bin}, 3)
	cl.Start(30 * time.Second)
	var clis []*clientv3.Client
	for _, m := range cl.Members {
		clis = append(clis, clientOf(t, m))
	}
	return cl, clis
}

// ctxLong is a context for a step that may wait on contention.
func ctxLong(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRecipes(t *testing.T) {
	for name, bin := range recipeTargets(t) {
		t.Run(name, func(t *testing.T) {
			_, clis := recipeCluster(t, bin)
			t.Run("mutex counter", func(t *testing.T) { mutexCounter(t, clis) })
			t.Run("trylock", func(t *testing.T) { tryLock(t, clis) })
			t.Run("election", func(t *testing.T) { election(t, clis) })
			t.Run("stm transfers", func(t *testing.T) { stmTransfers(t, clis) })
			t.Run("stm read committed", func(t *testing.T) { stmReadCommitted(t, clis) })
		})
	}
}

// mutexCounter: goroutines on every member increment one counter with a
// plain get and put under a Mutex. Without mutual exclusion updates are
// lost; with it the counter ends at the number of increments, and no two
// goroutines are ever inside at once.
func mutexCounter(t *testing.T, clis []*clientv3.Client) {
	const perClient, iters = 3, 8
	const counter = "/recipes/counter"
	var inside atomic.Int32
	var wg sync.WaitGroup
	errc := make(chan error, len(clis)*perClient)
	for _, cli := range clis {
		for g := 0; g < perClient; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errc <- incrementUnderMutex(ctxLong(t), cli, counter, iters, &inside)
			}()
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, want := readInt(t, clis[0], counter), len(clis)*perClient*iters; got != want {
		t.Fatalf("counter = %d after %d increments under the mutex: updates were lost", got, want)
	}
}

func incrementUnderMutex(ctx context.Context, cli *clientv3.Client, counter string, iters int, inside *atomic.Int32) error {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		return err
	}
	defer s.Close()
	m := concurrency.NewMutex(s, "/recipes/mutex")
	for i := 0; i < iters; i++ {
		if err := m.Lock(ctx); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if n := inside.Add(1); n != 1 {
			return fmt.Errorf("%d holders of the mutex at once", n)
		}
		resp, err := cli.Get(ctx, counter)
		if err != nil {
			return err
		}
		n := 0
		if len(resp.Kvs) == 1 {
			n, _ = strconv.Atoi(string(resp.Kvs[0].Value))
		}
		if _, err := cli.Put(ctx, counter, strconv.Itoa(n+1)); err != nil {
			return err
		}
		inside.Add(-1)
		if err := m.Unlock(ctx); err != nil {
			return fmt.Errorf("unlock: %w", err)
		}
	}
	return nil
}

func readInt(t *testing.T, cli *clientv3.Client, key string) int {
	t.Helper()
	resp, err := cli.Get(ctxT(t), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get %s: %v %v", key, resp, err)
	}
	n, err := strconv.Atoi(string(resp.Kvs[0].Value))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// tryLock: TryLock fails with ErrLocked while another member's session
// holds the mutex, leaving no key behind, and succeeds once it is free.
func tryLock(t *testing.T, clis []*clientv3.Client) {
	const name = "/recipes/try"
	sa, sb := session(t, clis[0], 10), session(t, clis[1], 10)
	ma, mb := concurrency.NewMutex(sa, name), concurrency.NewMutex(sb, name)
	if err := ma.Lock(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := mb.TryLock(ctxT(t)); !errors.Is(err, concurrency.ErrLocked) {
		t.Fatalf("TryLock of a held mutex: %v, want %v", err, concurrency.ErrLocked)
	}
	if n := countPrefix(t, clis[2], name+"/"); n != 1 {
		t.Fatalf("%d keys under the mutex after a failed TryLock, want the holder's only", n)
	}
	if err := ma.Unlock(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := mb.TryLock(ctxT(t)); err != nil {
		t.Fatalf("TryLock of a free mutex: %v", err)
	}
	if want := fmt.Sprintf("%s/%x", name, sb.Lease()); mb.Key() != want {
		t.Fatalf("key %q, want %q", mb.Key(), want)
	}
}

func session(t *testing.T, cli *clientv3.Client, ttl int) *concurrency.Session {
	t.Helper()
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func countPrefix(t *testing.T, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(ctxT(t), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// leaderGuard checks that at most one campaigner believes it leads.
type leaderGuard struct {
	t     *testing.T
	owner atomic.Int64
}

func (g *leaderGuard) elected(id int64) {
	if !g.owner.CompareAndSwap(0, id) {
		g.t.Errorf("campaigner %d elected while %d leads", id, g.owner.Load())
	}
}

func (g *leaderGuard) stepDown(id int64) {
	if !g.owner.CompareAndSwap(id, 0) {
		g.t.Errorf("campaigner %d steps down but %d leads", id, g.owner.Load())
	}
}

// campaign runs e.Campaign in the background; the channel gets its error.
func campaign(ctx context.Context, e *concurrency.Election, val string, g *leaderGuard, id int64) <-chan error {
	ch := make(chan error, 1)
	go func() {
		err := e.Campaign(ctx, val)
		if err == nil {
			g.elected(id)
		}
		ch <- err
	}()
	return ch
}

// election: campaigners on three members; leadership moves in order of
// campaign when the leader resigns, closes its session, or stops keeping
// its lease alive (expiry); an observer on another member sees every
// leader and proclamation in order; only the leader may proclaim.
func election(t *testing.T, clis []*clientv3.Client) {
	const name = "/recipes/election"
	g := &leaderGuard{t: t}
	obs := concurrency.NewElection(session(t, clis[2], 10), name)
	if _, err := obs.Leader(ctxT(t)); !errors.Is(err, concurrency.ErrElectionNoLeader) {
		t.Fatalf("leader of an empty election: %v, want %v", err, concurrency.ErrElectionNoLeader)
	}
	octx, ocancel := context.WithCancel(context.Background())
	defer ocancel()
	seen := obs.Observe(octx)
	expect := func(val string) {
		t.Helper()
		select {
		case r, ok := <-seen:
			if !ok {
				t.Fatalf("observer ended, waiting for %q", val)
			}
			if got := string(r.Kvs[0].Value); got != val {
				t.Fatalf("observed %q, want %q", got, val)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("observer saw nothing, waiting for %q", val)
		}
	}
	s1, s2 := session(t, clis[0], 10), session(t, clis[1], 10)
	s3 := session(t, clis[2], minTTL)
	e1, e2, e3 := concurrency.NewElection(s1, name), concurrency.NewElection(s2, name), concurrency.NewElection(s3, name)
	if err := <-campaign(ctxT(t), e1, "v1", g, 1); err != nil {
		t.Fatal(err)
	}
	expect("v1")
	c2 := campaign(ctxLong(t), e2, "v2", g, 2)
	waitKeys(t, clis[0], name+"/", 2) // e2 queued before e3
	c3 := campaign(ctxLong(t), e3, "v3", g, 3)
	waitKeys(t, clis[0], name+"/", 3)
	if err := e1.Proclaim(ctxT(t), "v1b"); err != nil {
		t.Fatal(err)
	}
	expect("v1b")
	if l, err := concurrency.NewElection(s2, name).Leader(ctxT(t)); err != nil || string(l.Kvs[0].Value) != "v1b" {
		t.Fatalf("leader seen from another member: %v %v", l, err)
	}
	// Resign: the next campaigner leads.
	key1, rev1 := e1.Key(), e1.Rev()
	g.stepDown(1)
	if err := e1.Resign(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-c2; err != nil {
		t.Fatal(err)
	}
	expect("v2")
	if err := e1.Proclaim(ctxT(t), "stale"); !errors.Is(err, concurrency.ErrElectionNotLeader) {
		t.Fatalf("proclaim after resigning: %v, want %v", err, concurrency.ErrElectionNotLeader)
	}
	// The same through a resumed election (as the election service
	// resumes one): the server's create-revision check refuses it.
	stale := concurrency.ResumeElection(s1, name, key1, rev1)
	if err := stale.Proclaim(ctxT(t), "stale"); !errors.Is(err, concurrency.ErrElectionNotLeader) {
		t.Fatalf("proclaim of a resigned leadership: %v, want %v", err, concurrency.ErrElectionNotLeader)
	}
	select {
	case err := <-c3:
		t.Fatalf("third campaigner returned (%v) while the second leads", err)
	default:
	}
	// Session closed (lease revoked): the next campaigner leads.
	g.stepDown(2)
	s2.Close()
	if err := <-c3; err != nil {
		t.Fatal(err)
	}
	expect("v3")
	// The leader stops keeping its lease alive: once it expires, a new
	// campaigner leads.
	g.stepDown(3)
	s3.Orphan()
	s4 := session(t, clis[0], 10)
	c4 := campaign(ctxLong(t), concurrency.NewElection(s4, name), "v4", g, 4)
	if err := <-c4; err != nil {
		t.Fatal(err)
	}
	expect("v4")
}

// waitKeys waits until n keys exist under prefix.
func waitKeys(t *testing.T, cli *clientv3.Client, prefix string, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for countPrefix(t, cli, prefix) != n {
		if time.Now().After(deadline) {
			t.Fatalf("never %d keys under %s", n, prefix)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// stmTransfers: goroutines on every member move random amounts between
// five accounts in STM transactions; with every isolation level that
// checks its reads at commit, the total stays the same and no account
// goes negative.
func stmTransfers(t *testing.T, clis []*clientv3.Client) {
	levels := []struct {
		name string
		iso  concurrency.Isolation
	}{
		{"serializable-snapshot", concurrency.SerializableSnapshot},
		{"serializable", concurrency.Serializable},
		{"repeatable-read", concurrency.RepeatableReads},
	}
	const accounts, start, perClient, iters = 5, 100, 3, 10
	for _, lv := range levels {
		t.Run(lv.name, func(t *testing.T) {
			key := func(i int) string { return fmt.Sprintf("/recipes/stm/%s/%d", lv.name, i) }
			for i := 0; i < accounts; i++ {
				if _, err := clis[0].Put(ctxT(t), key(i), strconv.Itoa(start)); err != nil {
					t.Fatal(err)
				}
			}
			var applies, commits atomic.Int64
			var wg sync.WaitGroup
			errc := make(chan error, len(clis)*perClient)
			for c, cli := range clis {
				for g := 0; g < perClient; g++ {
					wg.Add(1)
					rng := rand.New(rand.NewSource(int64(c*100 + g)))
					go func() {
						defer wg.Done()
						for i := 0; i < iters; i++ {
							from, to, amt := rng.Intn(accounts), rng.Intn(accounts), rng.Intn(40)+1
							if from == to {
								to = (to + 1) % accounts
							}
							_, err := concurrency.NewSTM(cli, func(s concurrency.STM) error {
								applies.Add(1)
								a, _ := strconv.Atoi(s.Get(key(from)))
								b, _ := strconv.Atoi(s.Get(key(to)))
								m := min(a, amt)
								s.Put(key(from), strconv.Itoa(a-m))
								s.Put(key(to), strconv.Itoa(b+m))
								return nil
							}, concurrency.WithIsolation(lv.iso), concurrency.WithAbortContext(ctxLong(t)))
							if err != nil {
								errc <- err
								return
							}
							commits.Add(1)
						}
						errc <- nil
					}()
				}
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				if err != nil {
					t.Fatal(err)
				}
			}
			sum := 0
			for i := 0; i < accounts; i++ {
				v := readInt(t, clis[1], key(i))
				if v < 0 {
					t.Errorf("account %d is %d", i, v)
				}
				sum += v
			}
			if sum != accounts*start {
				t.Fatalf("sum %d after transfers, want %d", sum, accounts*start)
			}
			t.Logf("%d transfers, %d applications (retries after conflicts: %d)", commits.Load(), applies.Load(), applies.Load()-commits.Load())
		})
	}
}

// stmReadCommitted: read-committed STMs check nothing at commit (etcd's
// definition), but each commits its writes at once: writers set two keys
// to the same value from every member, and readers of both keys in one
// request never see them differ.
func stmReadCommitted(t *testing.T, clis []*clientv3.Client) {
	const a, b = "/recipes/rc/a", "/recipes/rc/b"
	const perClient, iters = 2, 10
	var wg sync.WaitGroup
	errc := make(chan error, len(clis)*perClient+1)
	for c, cli := range clis {
		for g := 0; g < perClient; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < iters; i++ {
					v := fmt.Sprintf("%d-%d-%d", c, g, i)
					_, err := concurrency.NewSTM(cli, func(s concurrency.STM) error {
						_ = s.Get(a)
						s.Put(a, v)
						s.Put(b, v)
						return nil
					}, concurrency.WithIsolation(concurrency.ReadCommitted), concurrency.WithAbortContext(ctxLong(t)))
					if err != nil {
						errc <- err
						return
					}
				}
			}()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	reads := 0
	for stop := false; !stop; reads++ {
		select {
		case <-done:
			stop = true
		default:
		}
		resp, err := clis[reads%len(clis)].Get(ctxT(t), "/recipes/rc/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 2 && string(resp.Kvs[0].Value) != string(resp.Kvs[1].Value) {
			t.Fatalf("at revision %d a=%q b=%q: a transaction's writes were split", resp.Header.Revision, resp.Kvs[0].Value, resp.Kvs[1].Value)
		}
	}
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d consistent reads during the writes", reads)
}
