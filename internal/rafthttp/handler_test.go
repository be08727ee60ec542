package rafthttp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/raft/v3/raftpb"
)

const (
	hLocal   = 1
	hPeer    = 2 // known peer
	hRemoved = 3 // removed member
	hUnknown = 4 // neither
	hCluster = 0xc1
)

func marshal(t *testing.T, m raftpb.Message) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// envelope is a snapshot request body: length-prefixed message, then db
// bytes.
func envelope(t *testing.T, m raftpb.Message, db string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := (&messageEncoder{w: &buf}).encode(&m); err != nil {
		t.Fatal(err)
	}
	buf.WriteString(db)
	return buf.Bytes()
}

// TestHandlerTable checks each status, body and header of spec 1.2, 2.3,
// 3.1, 4 and 5.3 that applies to cairn, in the handlers' order of checks.
func TestHandlerTable(t *testing.T) {
	n := newNode(t, hLocal, hCluster)
	// A known peer whose URL refuses connections: its readers keep failing
	// quietly; only its presence matters here.
	n.tr.AddPeer(hPeer, []string{"http://127.0.0.1:1"})
	n.raft.setRemoved(hRemoved)

	valid := func(from uint64) http.Header {
		return http.Header{
			"X-Server-From":         {types.ID(from).String()},
			"X-Server-Version":      {"3.6.16"},
			"X-Min-Cluster-Version": {"3.0.0"},
			"X-Etcd-Cluster-Id":     {"c1"},
			"X-Peerurls":            {"http://127.0.0.1:2"},
			"X-Raft-To":             {"1"},
		}
	}
	with := func(h http.Header, kv ...string) http.Header {
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				h.Del(kv[i])
			} else {
				h.Set(kv[i], kv[i+1])
			}
		}
		return h
	}
	app := raftpb.Message{Type: raftpb.MsgApp, From: hPeer, To: hLocal, Term: 2, Index: 3}
	snap := raftpb.Message{Type: raftpb.MsgSnap, From: hPeer, To: hLocal, Term: 2,
		Snapshot: &raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 9, Term: 2}}}

	const plain = "text/plain; charset=utf-8"
	tests := []struct {
		name        string
		method      string
		path        string
		header      http.Header
		body        []byte
		wantCode    int
		wantBody    string
		wantHeaders map[string]string // "" = must be absent
		check       func(t *testing.T)
	}{
		// Routing.
		{name: "unknown raft path", method: "GET", path: "/raft/other", header: valid(hPeer),
			wantCode: 404, wantBody: "404 page not found\n"},
		{name: "stream path without type", method: "GET", path: "/raft/stream/x", header: valid(hPeer),
			wantCode: 404, wantBody: "invalid path\n"},

		// Stream handler, spec 3.1 in order.
		{name: "stream wrong method", method: "POST", path: "/raft/stream/message/2", header: valid(hPeer),
			wantCode: 405, wantBody: "Method Not Allowed\n",
			wantHeaders: map[string]string{"Allow": "GET", "X-Server-Version": "", "X-Etcd-Cluster-ID": ""}},
		{name: "stream no version headers", method: "GET", path: "/raft/stream/message/2",
			header:   with(valid(hPeer), "X-Server-Version", "", "X-Min-Cluster-Version", ""),
			wantCode: 412, wantBody: "incompatible version\n",
			wantHeaders: map[string]string{"X-Server-Version": "3.6.0", "X-Etcd-Cluster-ID": "c1",
				"Content-Type": plain, "X-Content-Type-Options": "nosniff"}},
		{name: "stream server 2.3.0", method: "GET", path: "/raft/stream/msgapp/2",
			header: with(valid(hPeer), "X-Server-Version", "2.3.0"), wantCode: 412, wantBody: "incompatible version\n"},
		{name: "stream min cluster 3.7.0", method: "GET", path: "/raft/stream/msgapp/2",
			header: with(valid(hPeer), "X-Min-Cluster-Version", "3.7.0"), wantCode: 412, wantBody: "incompatible version\n"},
		{name: "stream unparsable version", method: "GET", path: "/raft/stream/msgapp/2",
			header: with(valid(hPeer), "X-Server-Version", "cairn-0.1"), wantCode: 412, wantBody: "incompatible version\n"},
		{name: "stream cluster ID mismatch", method: "GET", path: "/raft/stream/message/2",
			header: with(valid(hPeer), "X-Etcd-Cluster-ID", "c2"), wantCode: 412, wantBody: "cluster ID mismatch\n",
			wantHeaders: map[string]string{"X-Server-Version": "3.6.0", "X-Etcd-Cluster-ID": "c1"}},
		{name: "stream cluster ID absent", method: "GET", path: "/raft/stream/message/2",
			header: with(valid(hPeer), "X-Etcd-Cluster-ID", ""), wantCode: 412, wantBody: "cluster ID mismatch\n"},
		{name: "stream cluster ID not canonical", method: "GET", path: "/raft/stream/message/2",
			header: with(valid(hPeer), "X-Etcd-Cluster-ID", "00c1"), wantCode: 412, wantBody: "cluster ID mismatch\n"},
		{name: "stream bad type", method: "GET", path: "/raft/stream/snap/2", header: valid(hPeer),
			wantCode: 404, wantBody: "invalid path\n"},
		{name: "stream bad from", method: "GET", path: "/raft/stream/message/xyz", header: valid(hPeer),
			wantCode: 404, wantBody: "invalid from\n"},
		{name: "stream removed sender", method: "GET", path: "/raft/stream/message/3", header: valid(hRemoved),
			wantCode: 410, wantBody: "removed member\n"},
		{name: "stream unknown sender", method: "GET", path: "/raft/stream/msgapp/4", header: valid(hUnknown),
			wantCode: 404, wantBody: "error sender not found\n",
			check: func(t *testing.T) {
				n.tr.mu.RLock()
				defer n.tr.mu.RUnlock()
				if n.tr.remotes[hUnknown] == nil {
					t.Error("unknown sender with X-PeerURLs was not registered as a remote")
				}
			}},
		{name: "stream to mismatch", method: "GET", path: "/raft/stream/message/2",
			header: with(valid(hPeer), "X-Raft-To", "5"), wantCode: 412, wantBody: "to field mismatch\n"},

		// Pipeline, spec 4.
		{name: "pipeline wrong method", method: "GET", path: "/raft", header: valid(hPeer),
			wantCode: 405, wantBody: "Method Not Allowed\n", wantHeaders: map[string]string{"Allow": "POST", "X-Etcd-Cluster-ID": ""}},
		{name: "pipeline incompatible version", method: "POST", path: "/raft",
			header: with(valid(hPeer), "X-Server-Version", "2.3.0"), body: marshal(t, app),
			wantCode: 412, wantBody: "incompatible version\n", wantHeaders: map[string]string{"X-Etcd-Cluster-ID": "c1"}},
		{name: "pipeline cluster ID mismatch", method: "POST", path: "/raft",
			header: with(valid(hPeer), "X-Etcd-Cluster-ID", "c2"), body: marshal(t, app),
			wantCode: 412, wantBody: "cluster ID mismatch\n"},
		{name: "pipeline garbage body", method: "POST", path: "/raft", header: valid(hPeer), body: []byte{0xff, 0xff},
			wantCode: 400, wantBody: "error unmarshalling raft message\n"},
		{name: "pipeline from removed member", method: "POST", path: "/raft", header: valid(hRemoved),
			body:     marshal(t, raftpb.Message{Type: raftpb.MsgHeartbeatResp, From: hRemoved, To: hLocal}),
			wantCode: 403, wantBody: `{"message":"cannot process message from removed member"}`,
			wantHeaders: map[string]string{"Content-Type": "application/json", "X-Etcd-Cluster-ID": "c1"}},
		{name: "pipeline to another member", method: "POST", path: "/raft", header: valid(hPeer),
			body:     marshal(t, raftpb.Message{Type: raftpb.MsgHeartbeat, From: hPeer, To: 9}),
			wantCode: 500, wantBody: "error processing raft message\n"},
		{name: "pipeline snapshot", method: "POST", path: "/raft", header: valid(hPeer), body: marshal(t, snap),
			wantCode: 500, wantBody: "error processing raft message\n"},
		{name: "pipeline ok", method: "POST", path: "/raft", header: valid(hPeer), body: marshal(t, app),
			wantCode: 204, wantBody: "", wantHeaders: map[string]string{"X-Etcd-Cluster-ID": "c1"},
			check: func(t *testing.T) {
				got := n.raft.received()
				if len(got) == 0 || got[len(got)-1].Type != raftpb.MsgApp || got[len(got)-1].Index != 3 {
					t.Errorf("raft received %+v", got)
				}
			}},

		// Snapshot, spec 5.3 as far as it applies.
		{name: "snapshot wrong method", method: "GET", path: "/raft/snapshot", header: valid(hPeer),
			wantCode: 405, wantBody: "Method Not Allowed\n", wantHeaders: map[string]string{"Allow": "POST"}},
		{name: "snapshot cluster ID mismatch", method: "POST", path: "/raft/snapshot",
			header: with(valid(hPeer), "X-Etcd-Cluster-ID", "c2"), body: envelope(t, snap, "db"),
			wantCode: 412, wantBody: "cluster ID mismatch\n"},
		{name: "snapshot truncated envelope", method: "POST", path: "/raft/snapshot", header: valid(hPeer),
			body: []byte{0, 0, 0}, wantCode: 400, wantBody: "failed to decode raft message (unexpected EOF)\n"},
		{name: "snapshot wrong type", method: "POST", path: "/raft/snapshot", header: valid(hPeer),
			body: envelope(t, app, "db"), wantCode: 400, wantBody: "wrong raft message type\n"},
		{name: "snapshot refused", method: "POST", path: "/raft/snapshot", header: valid(hPeer),
			body: envelope(t, snap, "db bytes"), wantCode: 500, wantBody: "cairn cannot install snapshots yet\n",
			wantHeaders: map[string]string{"X-Etcd-Cluster-ID": "c1", "Content-Type": plain}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, bytes.NewReader(tt.body))
			req.Header = tt.header
			rec := httptest.NewRecorder()
			n.tr.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.wantCode || rec.Body.String() != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
			for k, v := range tt.wantHeaders {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
	for _, msg := range []string{
		"failed version compatibility check", "request cluster ID mismatch", "rejected stream from remote peer because it was removed",
		"failed to find remote peer in cluster", "ignored streaming request; ID mismatch", "rejected Raft message from removed member",
		"rejected Raft message to mismatch member",
	} {
		if !logged(n.logs, msg) {
			t.Errorf("no log line %q", msg)
		}
	}
}

// The cluster ID refusal says, beyond etcd, who asked and what usually
// causes it.
func TestClusterIDMismatchLog(t *testing.T) {
	n := newNode(t, hLocal, hCluster)
	req := httptest.NewRequest("GET", "/raft/stream/message/2", nil)
	req.Header.Set("X-Server-From", "2")
	req.Header.Set("X-Server-Version", "3.6.16")
	req.Header.Set("X-Min-Cluster-Version", "3.0.0")
	req.Header.Set("X-Etcd-Cluster-ID", "dead")
	req.Header.Set("X-PeerURLs", "http://10.0.0.2:2380")
	for range 3 {
		n.tr.Handler().ServeHTTP(httptest.NewRecorder(), req)
	}
	lines := n.logs.FilterMessage("request cluster ID mismatch").All()
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1 (repeats are held back)", len(lines))
	}
	f := lines[0].ContextMap()
	for k, want := range map[string]any{
		"local-member-cluster-id": "c1", "remote-peer-cluster-id": "dead", "remote-peer-server-name": "2",
		"remote-peer-urls": "http://10.0.0.2:2380",
	} {
		if f[k] != want {
			t.Errorf("field %s = %v, want %v", k, f[k], want)
		}
	}
	causes, _ := f["likely-causes"].(string)
	for _, s := range []string{"stale data dir", "--initial-cluster-token", "--initial-cluster member lists", "existing"} {
		if !strings.Contains(causes, s) {
			t.Errorf("likely-causes %q lacks %q", causes, s)
		}
	}
}

func TestProbing(t *testing.T) {
	n := newNode(t, hLocal, hCluster)
	for _, method := range []string{"GET", "POST", "HEAD"} {
		resp, err := http.DefaultClient.Do(mustRequest(t, method, n.url()+"/raft/probing"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", method, resp.StatusCode)
		}
		if method == "HEAD" {
			continue
		}
		if !strings.HasSuffix(string(body), "\n") || !strings.HasPrefix(string(body), `{"OK":true,"Now":"`) {
			t.Fatalf("%s body %q", method, body)
		}
		var h struct {
			OK  bool
			Now string
		}
		if err := json.Unmarshal(body, &h); err != nil {
			t.Fatal(err)
		}
		if _, err := time.Parse(time.RFC3339Nano, h.Now); err != nil {
			t.Errorf("Now %q: %v", h.Now, err)
		}
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// A stream that is accepted answers 200 with the version and cluster
// headers, flushes at once, and carries link heartbeats while idle.
func TestStreamHandlerOK(t *testing.T) {
	n := newNode(t, hLocal, hCluster)
	n.tr.AddPeer(hPeer, []string{"http://127.0.0.1:1"})
	for _, typ := range []string{"message", "msgapp"} {
		req := mustRequest(t, "GET", n.url()+"/raft/stream/"+typ+"/2")
		req.Header.Set("X-Server-From", "2")
		req.Header.Set("X-Server-Version", "3.6.16")
		req.Header.Set("X-Min-Cluster-Version", "3.0.0")
		req.Header.Set("X-Etcd-Cluster-ID", "c1")
		req.Header.Set("X-Raft-To", "1")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("X-Server-Version") != "3.6.0" || resp.Header.Get("X-Etcd-Cluster-ID") != "c1" {
			t.Fatalf("%s: %d %v", typ, resp.StatusCode, resp.Header)
		}
		if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("%s: transfer encoding %v, want chunked", typ, resp.TransferEncoding)
		}
		r := bufio.NewReader(resp.Body)
		var m raftpb.Message
		if typ == "message" {
			m, err = (&messageDecoder{r: r}).decode()
		} else {
			m, err = (&msgAppV2Decoder{r: r}).decode()
		}
		if err != nil || !isLinkHeartbeat(&m) {
			t.Fatalf("%s: first record %+v %v, want a link heartbeat", typ, m, err)
		}
		resp.Body.Close()
	}
	// (The peer's own URL refuses connections, so its failing dials make
	// the status flap; the activation is what matters here.)
	if !logged(n.logs, "peer became active") {
		t.Error("peer not activated when it attached a stream")
	}
}

// Stream answers missing X-Server-Version are never used (spec 2.5).
func TestStreamAnswerWithoutVersionIgnored(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	n := newNode(t, hLocal, hCluster)
	n.tr.AddPeer(hPeer, []string{srv.URL})
	p := n.tr.peer(hPeer)
	_, err := p.msgReader.dial()
	if !errors.Is(err, ErrUnsupportedStream) {
		t.Fatalf("dial: %v, want ErrUnsupportedStream", err)
	}
	if !n.tr.ActiveSince(hPeer).IsZero() {
		t.Error("peer became active from an answer without X-Server-Version")
	}
}
