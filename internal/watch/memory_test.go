package watch

import (
	"fmt"
	"runtime"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// heapPerWatcher creates n idle watchers (keys from key) over 10 streams
// and returns the live heap they hold, per watcher.
func heapPerWatcher(t *testing.T, n int, key func(i int) *pb.WatchCreateRequest) float64 {
	e := newEnv(t, nil)
	var cs []*client
	for i := 0; i < 10; i++ {
		cs = append(cs, e.newClient())
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	for i := 0; i < n; i++ {
		cs[i%10].s.Create(key(i))
	}
	for _, c := range cs {
		c.waitN(t, n/10)
		c.mu.Lock()
		c.resps = nil // what the test client keeps is not the hub's
		c.mu.Unlock()
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	per := float64(int64(ms.HeapAlloc)-int64(before)) / float64(n)
	runtime.KeepAlive(cs)
	return per
}

// An idle watcher costs a few hundred bytes of heap: on its own key, or
// sharing a prefix with all the others.
func TestIdleWatcherMemory(t *testing.T) {
	distinct := heapPerWatcher(t, 10000, func(i int) *pb.WatchCreateRequest {
		return &pb.WatchCreateRequest{Key: []byte(fmt.Sprintf("/idle/%06d", i))}
	})
	shared := heapPerWatcher(t, 10000, func(i int) *pb.WatchCreateRequest {
		return &pb.WatchCreateRequest{Key: []byte("/p/"), RangeEnd: []byte("/p0")}
	})
	t.Logf("heap per idle watcher: %.0f B on distinct keys, %.0f B on one prefix", distinct, shared)
	if distinct > 600 || shared > 400 {
		t.Fatalf("idle watchers cost %.0f B (distinct keys), %.0f B (one prefix)", distinct, shared)
	}
}
