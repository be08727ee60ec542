package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Thousands of watches opened, fed and cancelled, on streams that come and
// go, leave no goroutines, watchers, streams or memory behind on the server.
func TestWatchChurnLeaksNothing(t *testing.T) {
	m := startCairn(t)
	c := m.Client3()
	defer c.Close()
	for i := range 50 {
		if _, err := c.Put(ctxT(t), fmt.Sprintf("churn/%02d", i), "v0"); err != nil {
			t.Fatal(err)
		}
	}
	base, err := c.Get(ctxT(t), "churn/00")
	if err != nil {
		t.Fatal(err)
	}
	firstRev := base.Header.Revision - 49

	// round opens, on each of 10 fresh connections (one gRPC watch stream
	// each), 100 watches of several kinds; each must see one event (a
	// replay from a past revision, or the put that follows), then all are
	// cancelled and the connections closed.
	round := func() {
		t.Helper()
		errc := make(chan error, 10)
		for w := range 10 {
			go func() {
				errc <- func() error {
					wc, err := clientv3.New(clientv3.Config{Endpoints: []string{m.Client}, DialTimeout: 5 * time.Second})
					if err != nil {
						return err
					}
					defer wc.Close()
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					var chans []clientv3.WatchChan
					for i := range 100 {
						key := fmt.Sprintf("churn/%02d", (w*100+i)%50)
						var opts []clientv3.OpOption
						switch i % 4 {
						case 0:
							opts = []clientv3.OpOption{clientv3.WithRev(firstRev)}
						case 1:
							opts = []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(firstRev), clientv3.WithPrevKV()}
						case 2:
							opts = []clientv3.OpOption{clientv3.WithRev(firstRev), clientv3.WithProgressNotify()}
						case 3:
							opts = []clientv3.OpOption{clientv3.WithRev(firstRev), clientv3.WithFilterDelete()}
						}
						chans = append(chans, wc.Watch(clientv3.WithRequireLeader(ctx), key, opts...))
					}
					for i, ch := range chans {
						select {
						case r, ok := <-ch:
							if !ok || r.Err() != nil || len(r.Events) == 0 {
								return fmt.Errorf("watch %d of stream %d: %v %v", i, w, ok, r.Err())
							}
						case <-ctx.Done():
							return fmt.Errorf("watch %d of stream %d saw nothing", i, w)
						}
					}
					return nil
				}()
			}()
		}
		for range 10 {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
	}
	round() // warm up: connection buffers, caches
	waitUntil(t, "the warm-up's watchers to go", func() bool {
		return metric(t, m, "etcd_debugging_mvcc_watcher_total") == 0
	})
	goroutines := metric(t, m, "go_goroutines")
	heap := metric(t, m, "go_memstats_heap_inuse_bytes")
	for range 4 {
		round()
	}
	// Streams end asynchronously after their clients go.
	waitUntil(t, "watchers, streams and goroutines to settle", func() bool {
		return metric(t, m, "etcd_debugging_mvcc_watcher_total") == 0 &&
			metric(t, m, "etcd_debugging_mvcc_watch_stream_total") == 0 &&
			metric(t, m, "go_goroutines") <= goroutines+10
	})
	if h := metric(t, m, "go_memstats_heap_inuse_bytes"); h > heap+32<<20 {
		t.Fatalf("heap in use grew from %.0f to %.0f bytes over 4,000 watches", heap, h)
	}
}
