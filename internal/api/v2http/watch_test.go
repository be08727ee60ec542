package v2http

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/v2store"
)

// fakeServer applies writes to its store at once, as a one-member cluster.
type fakeServer struct {
	ClusterServer // not used by the keys tests
	st            *v2store.Store
}

func (f *fakeServer) V2Store() *v2store.Store { return f.st }
func (f *fakeServer) V2Write(_ context.Context, r *v2store.Request) (*v2store.Event, error) {
	ev, _, err := f.st.Apply(r, time.Now())
	if err != nil {
		return nil, err
	}
	return ev, nil
}
func (f *fakeServer) LinearizableReadNotify(context.Context) error { return nil }
func (f *fakeServer) ClusterID() uint64                            { return 0xabc }
func (f *fakeServer) CommittedIndex() uint64                       { return 42 }
func (f *fakeServer) Term() uint64                                 { return 7 }

func newTestServer(t *testing.T) (*httptest.Server, *v2store.Store) {
	st := v2store.New()
	h := Wrap(http.NotFoundHandler(), &fakeServer{st: st}, zap.NewNop(), 5*time.Second)
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts, st
}

func put(t *testing.T, base, p, value string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", base+"/v2/keys"+p, strings.NewReader(url.Values{"value": {value}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWatchHTTP: headers are flushed before any event, the body is the
// waking event, X-Etcd-Index is the index at the watch's start.
func TestWatchHTTP(t *testing.T) {
	ts, st := newTestServer(t)
	put(t, ts.URL, "/a", "1")
	resp, err := http.Get(ts.URL + "/v2/keys/a?wait=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != 200 || h.Get("X-Etcd-Index") != "1" || h.Get("X-Raft-Index") != "42" || h.Get("X-Raft-Term") != "7" ||
		h.Get("Content-Type") != "application/json" || h.Get("X-Etcd-Cluster-Id") != "abc" {
		t.Fatalf("%d %v", resp.StatusCode, h)
	}
	waitFor(t, "watcher", func() bool { return st.Watchers() == 1 })
	put(t, ts.URL, "/a", "2")
	b, _ := io.ReadAll(resp.Body)
	want := `{"action":"set","node":{"key":"/a","value":"2","modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/a","value":"1","modifiedIndex":1,"createdIndex":1}}` + "\n"
	if string(b) != want {
		t.Fatalf("body %q", b)
	}
	if st.Watchers() != 0 {
		t.Fatalf("%d watchers", st.Watchers())
	}

	// 401 for an index older than the history: 400 with the error body.
	for i := 0; i < v2store.HistorySize+5; i++ {
		put(t, ts.URL, "/b", "x")
	}
	resp, err = http.Get(ts.URL + "/v2/keys/b?wait=true&waitIndex=2")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("X-Etcd-Index") != "1007" ||
		string(b) != `{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [8/2]","index":1007}`+"\n" {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, b)
	}
}

// TestWatchClientGone: handlers of watches whose clients went away end and
// unregister their watchers; no goroutine is left.
func TestWatchClientGone(t *testing.T) {
	ts, st := newTestServer(t)
	before := runtime.NumGoroutine()
	tr := &http.Transport{}
	cl := &http.Client{Transport: tr}
	var bodies []io.Closer
	for i := 0; i < 50; i++ {
		q := "/v2/keys/k?wait=true"
		if i%2 == 1 {
			q += "&stream=true&recursive=true"
		}
		resp, err := cl.Get(ts.URL + q)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, resp.Body)
	}
	waitFor(t, "50 watchers", func() bool { return st.Watchers() == 50 })
	for _, b := range bodies {
		b.Close()
	}
	tr.CloseIdleConnections()
	waitFor(t, "watchers removed", func() bool { return st.Watchers() == 0 })
	waitFor(t, "goroutines back", func() bool { return runtime.NumGoroutine() <= before+2 })
}

// TestWatchStreamHTTP: a stream delivers every event in order, each as
// one line, and ends when the store drops its watchers.
func TestWatchStreamHTTP(t *testing.T) {
	ts, st := newTestServer(t)
	resp, err := http.Get(ts.URL + "/v2/keys/s?wait=true&stream=true&recursive=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitFor(t, "watcher", func() bool { return st.Watchers() == 1 })
	for i := 0; i < 20; i++ {
		put(t, ts.URL, "/s/k", "v")
	}
	sc := bufio.NewScanner(resp.Body)
	for i := 0; i < 20; i++ {
		if !sc.Scan() {
			t.Fatalf("stream ended after %d events: %v", i, sc.Err())
		}
		if !strings.Contains(sc.Text(), `"modifiedIndex":`+strconv.Itoa(i+1)+`,`) {
			t.Fatalf("event %d: %s", i, sc.Text())
		}
	}
	st.CloseWatchers()
	if sc.Scan() {
		t.Fatalf("stream goes on after CloseWatchers: %s", sc.Text())
	}
}
