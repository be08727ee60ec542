package discovery

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

func list(keys ...string) *memberList {
	l := &memberList{prefix: "/p/"}
	for i, k := range keys {
		if err := l.add("/p/"+k, k+"=http://127.0.0.1:"+string(rune('1'+i))+"000", int64(10+i)); err != nil {
			panic(err)
		}
	}
	return l
}

func TestMemberListWithin(t *testing.T) {
	for _, tc := range []struct {
		keys []string
		self string
		size int
		want bool
	}{
		{nil, "a", 3, true},
		{[]string{"b", "c"}, "a", 3, true},       // room left
		{[]string{"b", "c", "d"}, "a", 3, false}, // full
		{[]string{"b", "a", "c"}, "a", 2, true},  // second of two
		{[]string{"b", "c", "a"}, "a", 2, false}, // registered too late
		{[]string{"b", "c", "a"}, "a", 3, true},  // exactly size
	} {
		if got := list(tc.keys...).within("/p/"+tc.self, tc.size); got != tc.want {
			t.Errorf("%v self %s size %d: within %v, want %v", tc.keys, tc.self, tc.size, got, tc.want)
		}
	}
}

func TestMemberListAddOrdersAndRefuses(t *testing.T) {
	l := &memberList{prefix: "/p/"}
	l.add("/p/b", "b=http://127.0.0.1:2", 7)
	l.add("/p/a", "a=http://127.0.0.1:1", 3)
	for _, bad := range [][2]string{{"/q/c", "c=http://127.0.0.1:3"}, {"/p/c", "no-equals"}, {"/p/a", "a=http://127.0.0.1:1"}} {
		if err := l.add(bad[0], bad[1], 9); err == nil {
			t.Errorf("add %v accepted", bad)
		}
	}
	if s, err := l.initialCluster(2, ErrInvalidPeerURL); err != nil || s != "a=http://127.0.0.1:1,b=http://127.0.0.1:2" {
		t.Fatalf("initial cluster %q %v", s, err)
	}
	if s, _ := l.initialCluster(1, ErrInvalidPeerURL); s != "a=http://127.0.0.1:1" {
		t.Fatalf("first of size 1: %q", s)
	}
}

func TestInitialClusterErrors(t *testing.T) {
	bad := &memberList{ms: []regMember{{value: "a=127.0.0.1:1"}}}
	if _, err := bad.initialCluster(1, ErrInvalidURL); !errors.Is(err, ErrInvalidURL) {
		t.Errorf("bad URL: %v", err)
	}
	dup := &memberList{ms: []regMember{{value: "a=http://127.0.0.1:1"}, {value: "a=http://127.0.0.1:2"}}}
	if _, err := dup.initialCluster(2, ErrInvalidURL); !errors.Is(err, ErrDuplicateName) {
		t.Errorf("duplicate name: %v", err)
	}
}

func TestRetrierBackoff(t *testing.T) {
	var got []time.Duration
	r := retrier{lg: zap.NewNop(), sleep: func(_ context.Context, d time.Duration) error { got = append(got, d); return nil }}
	for i := 0; i < 10; i++ {
		r.wait(context.Background(), "x")
	}
	r.reset()
	r.wait(context.Background(), "x")
	want := []time.Duration{2, 4, 8, 16, 32, 64, 128, 256, 256, 256, 2}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("backoffs %v, want %v s", got, want)
		}
	}
}

// fakeRegistry is an in-memory v3 store with create revisions.
type fakeRegistry struct {
	mu       sync.Mutex
	rev      int64
	kv       map[string]regMember
	failGets int // the next failGets gets fail
	watchers []chan []regMember
}

func newFake() *fakeRegistry { return &fakeRegistry{kv: map[string]regMember{}} }

func (f *fakeRegistry) get(_ context.Context, key string, prefix bool) ([]regMember, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failGets > 0 {
		f.failGets--
		return nil, 0, errors.New("unavailable")
	}
	var out []regMember
	for k, m := range f.kv {
		if k == key || (prefix && strings.HasPrefix(k, key)) {
			out = append(out, m)
		}
	}
	return out, f.rev, nil
}

func (f *fakeRegistry) put(_ context.Context, key, val string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rev++
	m, ok := f.kv[key]
	if !ok {
		m.rev = f.rev
	}
	m.key, m.value = key, val
	f.kv[key] = m
	for _, w := range f.watchers {
		w <- []regMember{m}
	}
	return nil
}

func (f *fakeRegistry) watch(ctx context.Context, _ string, _ int64) <-chan []regMember {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := make(chan []regMember, 10)
	f.watchers = append(f.watchers, c)
	return c
}

func testJoin(f *fakeRegistry, id uint64) *v3join {
	return &v3join{lg: zap.NewNop(), reg: f, token: "t", id: id, timeout: time.Second,
		retry: retrier{lg: zap.NewNop(), sleep: func(context.Context, time.Duration) error { return nil }}}
}

func TestV3Join(t *testing.T) {
	f := newFake()
	f.put(context.Background(), "/_etcd/registry/t/_config/size", "2")
	f.put(context.Background(), "/_etcd/registry/t/members/a", "peer=http://127.0.0.1:1")
	f.failGets = 2 // retried
	got, err := testJoin(f, 0xb).join(context.Background(), "me=http://127.0.0.1:2")
	if err != nil || got != "peer=http://127.0.0.1:1,me=http://127.0.0.1:2" {
		t.Fatalf("join: %q %v", got, err)
	}
	if _, err := testJoin(f, 0xc).join(context.Background(), "late=http://127.0.0.1:3"); !errors.Is(err, ErrFullCluster) {
		t.Fatalf("third member: %v", err)
	}
	// A member registered before (a retry after a failed start) rejoins.
	if got, err := testJoin(f, 0xb).join(context.Background(), "me=http://127.0.0.1:2"); err != nil || !strings.Contains(got, "me=") {
		t.Fatalf("re-join: %q %v", got, err)
	}
}

func TestV3JoinWaitsForPeers(t *testing.T) {
	f := newFake()
	f.put(context.Background(), "/_etcd/registry/t/_config/size", "2")
	done := make(chan string)
	go func() {
		s, _ := testJoin(f, 1).join(context.Background(), "one=http://127.0.0.1:1")
		done <- s
	}()
	for {
		if ms, _, _ := f.get(context.Background(), "/_etcd/registry/t/members", true); len(ms) == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	f.put(context.Background(), "/_etcd/registry/t/members/2", "two=http://127.0.0.1:2")
	select {
	case s := <-done:
		if s != "one=http://127.0.0.1:1,two=http://127.0.0.1:2" {
			t.Fatalf("cluster %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("join did not return after the second registration")
	}
}

func TestV3SizeErrors(t *testing.T) {
	for _, tc := range []struct {
		size string
		want error
	}{{"", ErrSizeNotFound}, {"0", ErrBadSizeKey}, {"x", ErrBadSizeKey}, {"-1", ErrBadSizeKey}} {
		f := newFake()
		if tc.size != "" {
			f.put(context.Background(), "/_etcd/registry/t/_config/size", tc.size)
		}
		if _, err := testJoin(f, 1).join(context.Background(), "a=http://127.0.0.1:1"); !errors.Is(err, tc.want) {
			t.Errorf("size %q: %v, want %v", tc.size, err, tc.want)
		}
	}
}

func TestV2ClientAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/text":
			http.NotFound(w, r)
		case "/v2err":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errorCode":100,"message":"Key not found","cause":"/x","index":6}`))
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/empty":
			w.Header().Set("X-Etcd-Index", "3")
			w.WriteHeader(http.StatusCreated)
		case "/ok":
			w.Header().Set("X-Etcd-Index", "9")
			w.Write([]byte(`{"action":"get","node":{"key":"/ok","value":"3","createdIndex":4}}`))
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c := newV2Client(*u, nil)
	ctx := context.Background()
	var ue *unavailableError
	var ve *v2Error
	if _, err := c.get(ctx, "/text"); !errors.Is(err, errInvalidJSON) {
		t.Errorf("text 404: %v", err)
	}
	if _, err := c.get(ctx, "/v2err"); !errors.As(err, &ve) || err.Error() != "100: Key not found (/x) [6]" {
		t.Errorf("v2 error: %v", err)
	}
	if _, err := c.get(ctx, "/down"); !errors.As(err, &ue) {
		t.Errorf("503: %v", err)
	}
	if _, err := c.create(ctx, "/empty", "v"); !errors.Is(err, errEmptyBody) {
		t.Errorf("empty 201: %v", err)
	}
	if r, err := c.get(ctx, "ok"); err != nil || r.Index != 9 || r.Node.Value != "3" {
		t.Errorf("ok: %+v %v", r, err)
	}
	srv.Close()
	if _, err := c.get(ctx, "/ok"); !errors.As(err, &ue) {
		t.Errorf("closed server: %v", err)
	}
}

func TestProxyFunc(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:3128": "http://127.0.0.1:3128", "https://p:1": "https://p:1", "http://p": "http://p"} {
		pf, err := proxyFunc(zap.NewNop(), in)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := pf(&http.Request{URL: &url.URL{Scheme: "http", Host: "x"}})
		if u.String() != want {
			t.Errorf("proxy %q: %s, want %s", in, u, want)
		}
	}
	if pf, _ := proxyFunc(zap.NewNop(), ""); pf != nil {
		t.Error("empty proxy gives a proxy")
	}
}
