package k8s

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/api/apitesting"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/cacher"
	"k8s.io/apiserver/pkg/storage/etcd3"
	etcdfeature "k8s.io/apiserver/pkg/storage/feature"
	"k8s.io/apiserver/pkg/storage/value/encrypt/identity"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
)

func init() {
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(scheme))
	utilruntime.Must(examplev1.AddToScheme(scheme))
}

// TestWatchCacheOnServer checks, on cairn and on etcd 3.6.16 alike, the three
// paths of kube-apiserver's storage layer that lean on etcd's watch and lease
// semantics, through Kubernetes' own etcd3 store and watch cache (cacher)
// with the feature gates at their 1.36 defaults:
//
//   - a consistent LIST (no resource version) is served from the watch cache:
//     the cache learns the current revision from a progress request on its
//     watch (RequestWatchProgress) and never falls back to a LIST on the
//     server, even when the latest revisions touched other keys;
//   - a WATCH with sendInitialEvents (WatchList) gets the current objects and
//     then the initial-events-end bookmark at the current revision, which
//     also needs a progress request;
//   - objects created with a TTL (how the apiserver stores Events) share one
//     lease of TTL+reuse seconds, and vanish together, in one revision, when
//     it expires, not earlier, the watch cache seeing both deletions.
//
// It also checks the apiserver trusts the server's progress requests at all
// (it only does for versions it knows to be correct, from Status).
func TestWatchCacheOnServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and waits for a lease to expire")
	}
	if !k8sEnabled() {
		t.Skip(skipMessage)
	}
	for _, target := range []string{"cairn", "etcd"} {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			bin := framework.Cairn(t)
			if target == "etcd" {
				bin = refs.EtcdRelease(t, refs.Default).Etcd
			}
			m := framework.NewMember(t, bin, "k8s-"+target)
			m.StartAndWait(60 * time.Second)
			client := newClient(t, m.Client)
			store := newStore(t, client)
			waitFor(t, 30*time.Second, "the apiserver trusting the server's progress requests (Status version)", func() bool {
				return etcdfeature.DefaultFeatureSupportChecker.Supports(storage.RequestWatchProgress)
			})
			cache, progress, fallback := newCache(t, store)

			t.Run("ConsistentListFromCache", func(t *testing.T) {
				testConsistentList(t, client, cache, progress, fallback)
			})
			t.Run("WatchListInitialEvents", func(t *testing.T) {
				testWatchList(t, client, cache)
			})
			t.Run("ObjectsWithTTL", func(t *testing.T) {
				testTTL(t, client, cache)
			})
		})
	}
}

func testConsistentList(t *testing.T, client *kubernetes.Client, cache storage.Interface, progress, fallback *countingStorage) {
	ctx := context.Background()
	createPod(t, cache, "consistent", 0)
	// Writes outside the cached prefix: the watch cache sees no event for
	// them, so only a progress notification can tell it the revision moved.
	rev := bumpRevision(t, client, 3)
	progressBefore, listsBefore := progress.progress.Load(), fallback.lists.Load()

	out := &example.PodList{}
	opts := storage.ListOptions{Recursive: true, Predicate: storage.Everything}
	if err := cache.GetList(ctx, "/pods/", opts, out); err != nil {
		t.Fatalf("consistent list: %v", err)
	}
	if got := out.ResourceVersion; got != strconv.FormatInt(rev, 10) {
		t.Errorf("consistent list at resource version %s, want the server's revision %d", got, rev)
	}
	if !hasPod(out, "consistent") {
		t.Errorf("consistent list misses the pod just created: %v", names(out))
	}
	if n := fallback.lists.Load() - listsBefore; n != 0 {
		t.Errorf("consistent list fell back to %d LIST(s) on the server: the watch cache did not catch up through a progress request", n)
	}
	if progress.progress.Load() == progressBefore {
		t.Errorf("the watch cache served a consistent list without a progress request")
	}
}

func testWatchList(t *testing.T, client *kubernetes.Client, cache storage.Interface) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createPod(t, cache, "watchlist", 0)
	rev := bumpRevision(t, client, 2)
	opts := storage.ListOptions{
		Recursive:         true,
		SendInitialEvents: ptr.To(true),
		Predicate: storage.SelectionPredicate{
			Label: storage.Everything.Label, Field: storage.Everything.Field,
			AllowWatchBookmarks: true,
		},
	}
	opts.Predicate.GetAttrs = storage.DefaultNamespaceScopedAttr
	w, err := cache.Watch(ctx, "/pods/", opts)
	if err != nil {
		t.Fatalf("watch-list: %v", err)
	}
	defer w.Stop()
	seen := map[string]bool{}
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch-list closed before the initial-events-end bookmark (seen %v)", seen)
			}
			switch ev.Type {
			case watch.Added:
				seen[accessor(t, ev.Object).GetName()] = true
			case watch.Bookmark:
				obj := accessor(t, ev.Object)
				if obj.GetAnnotations()[metav1.InitialEventsAnnotationKey] != "true" {
					continue
				}
				got, _ := strconv.ParseInt(obj.GetResourceVersion(), 10, 64)
				if got < rev {
					t.Errorf("initial-events-end bookmark at %d, before the server's revision %d when the watch started", got, rev)
				}
				if !seen["watchlist"] {
					t.Errorf("initial events %v miss the pod just created", seen)
				}
				return
			default:
				t.Fatalf("unexpected %s event before the initial-events-end bookmark: %v", ev.Type, ev.Object)
			}
		case <-ctx.Done():
			t.Fatalf("no initial-events-end bookmark within 60s (seen %v)", seen)
		}
	}
}

func testTTL(t *testing.T, client *kubernetes.Client, cache storage.Interface) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// The lease manager adds min(5% of the TTL, its reuse duration: 1 s here)
	// to the TTL and attaches objects created within that margin to the same
	// lease. 20 s is the smallest TTL that gets a margin.
	const ttl = 20
	start := time.Now()
	rv := createPod(t, cache, "event-1", ttl)
	createPod(t, cache, "event-2", ttl)

	var leases []clientv3.LeaseID
	for _, name := range []string{"event-1", "event-2"} {
		resp, err := client.Client.Get(ctx, "/registry/pods/default/"+name)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("raw get of %s: %v %v", name, resp, err)
		}
		leases = append(leases, clientv3.LeaseID(resp.Kvs[0].Lease))
	}
	if leases[0] == 0 || leases[0] != leases[1] {
		t.Fatalf("objects with TTL on leases %x and %x, want one shared lease", leases[0], leases[1])
	}
	ttlResp, err := client.TimeToLive(ctx, leases[0], clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatalf("lease time-to-live: %v", err)
	}
	if ttlResp.GrantedTTL != ttl+1 || len(ttlResp.Keys) != 2 {
		t.Errorf("lease granted TTL %d with %d keys, want %d with 2", ttlResp.GrantedTTL, len(ttlResp.Keys), ttl+1)
	}

	w, err := cache.Watch(ctx, "/pods/default/", storage.ListOptions{
		ResourceVersion: rv, Recursive: true, Predicate: storage.Everything,
	})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()
	deleted := map[string]string{} // name → resource version of the deletion
	for len(deleted) < 2 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after deletions %v", deleted)
			}
			if ev.Type == watch.Deleted {
				obj := accessor(t, ev.Object)
				deleted[obj.GetName()] = obj.GetResourceVersion()
			}
		case <-ctx.Done():
			t.Fatalf("objects with a %ds TTL not deleted after %v (deleted: %v)", ttl, time.Since(start).Round(time.Second), deleted)
		}
	}
	if elapsed := time.Since(start); elapsed < ttl*time.Second {
		t.Errorf("objects with a %ds TTL deleted after %v", ttl, elapsed)
	}
	if deleted["event-1"] != deleted["event-2"] {
		t.Errorf("the lease's objects were deleted at revisions %v, want one revision", deleted)
	}
}

// countingStorage counts the calls the watch cache makes that matter here.
type countingStorage struct {
	storage.Interface
	progress atomic.Int64 // RequestWatchProgress calls
	lists    atomic.Int64 // GetList calls
}

func (s *countingStorage) RequestWatchProgress(ctx context.Context) error {
	s.progress.Add(1)
	return s.Interface.RequestWatchProgress(ctx)
}

func (s *countingStorage) GetList(ctx context.Context, key string, opts storage.ListOptions, out runtime.Object) error {
	s.lists.Add(1)
	return s.Interface.GetList(ctx, key, opts, out)
}

func newClient(t *testing.T, endpoint string) *kubernetes.Client {
	t.Helper()
	c, err := kubernetes.New(clientv3.Config{
		Endpoints: []string{endpoint}, DialTimeout: 10 * time.Second, Logger: zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newStore is the etcd3 store as the apiserver builds it for pods under
// /registry, objects with a TTL sharing leases for up to 1 s.
func newStore(t *testing.T, c *kubernetes.Client) storage.Interface {
	t.Helper()
	codec := apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion)
	versioner := storage.APIObjectVersioner{}
	compactor := etcd3.NewCompactor(c.Client, 0, clock.RealClock{}, nil)
	t.Cleanup(compactor.Stop)
	s, err := etcd3.New(c, compactor, codec,
		func() runtime.Object { return &example.Pod{} },
		func() runtime.Object { return &example.PodList{} },
		"/registry", "/pods/", schema.GroupResource{Resource: "pods"},
		identity.NewEncryptCheckTransformer(),
		etcd3.LeaseManagerConfig{ReuseDurationSeconds: 1, MaxObjectCount: 1000},
		etcd3.NewDefaultDecoder(codec, versioner), versioner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// newCache puts the watch cache in front of s as the apiserver does. The
// cache reads and watches through progress; the delegator falls back to
// fallback when the cache cannot serve a request.
func newCache(t *testing.T, s storage.Interface) (storage.Interface, *countingStorage, *countingStorage) {
	t.Helper()
	progress := &countingStorage{Interface: s}
	fallback := &countingStorage{Interface: s}
	c, err := cacher.NewCacherFromConfig(cacher.Config{
		Storage:             progress,
		Versioner:           storage.APIObjectVersioner{},
		GroupResource:       schema.GroupResource{Resource: "pods"},
		EventsHistoryWindow: cacher.DefaultEventFreshDuration,
		ResourcePrefix:      "/pods/",
		KeyFunc:             func(obj runtime.Object) (string, error) { return storage.NamespaceKeyFunc("/pods/", obj) },
		GetAttrsFunc:        storage.DefaultNamespaceScopedAttr,
		NewFunc:             func() runtime.Object { return &example.Pod{} },
		NewListFunc:         func() runtime.Object { return &example.PodList{} },
		Codec:               codecs.LegacyCodec(examplev1.SchemeGroupVersion),
		Clock:               clock.RealClock{},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Wait(ctx); err != nil {
		t.Fatalf("watch cache not ready: %v", err)
	}
	d := cacher.NewCacheDelegator(c, fallback)
	t.Cleanup(func() { d.Stop(); c.Stop() })
	return d, progress, fallback
}

// createPod creates pod name in namespace default with ttl seconds (0: none)
// and returns its resource version.
func createPod(t *testing.T, s storage.Interface, name string, ttl uint64) string {
	t.Helper()
	pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
	out := &example.Pod{}
	if err := s.Create(context.Background(), "/pods/default/"+name, pod, out, ttl); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return out.ResourceVersion
}

// bumpRevision writes n keys outside the apiserver's prefix and returns the
// revision of the last.
func bumpRevision(t *testing.T, c *kubernetes.Client, n int) int64 {
	t.Helper()
	var rev int64
	for i := 0; i < n; i++ {
		resp, err := c.Client.Put(context.Background(), fmt.Sprintf("/unrelated/%d", i), "x")
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	return rev
}

// accessor reads an object's metadata; the watch cache may hand out its own
// wrapper around the stored object.
func accessor(t *testing.T, obj runtime.Object) metav1.Object {
	t.Helper()
	a, err := meta.Accessor(obj)
	if err != nil {
		t.Fatalf("object without metadata: %v", err)
	}
	return a
}

func hasPod(l *example.PodList, name string) bool {
	for _, p := range l.Items {
		if p.Name == name {
			return true
		}
	}
	return false
}

func names(l *example.PodList) []string {
	var n []string
	for _, p := range l.Items {
		n = append(n, p.Name)
	}
	return n
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
