package rafthttp

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{LocalID: 1, ClusterID: 2, Raft: newFakeRaft(), LocalURLs: []string{"http://127.0.0.1:2380"}}
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no local ID", func(c *Config) { c.LocalID = 0 }, "LocalID must be non-zero"},
		{"no cluster ID", func(c *Config) { c.ClusterID = 0 }, "ClusterID must be non-zero"},
		{"no raft", func(c *Config) { c.Raft = nil }, "Raft must be set"},
		{"bad server version", func(c *Config) { c.ServerVersion = "3.6" }, "ServerVersion"},
		{"bad min version", func(c *Config) { c.MinClusterVersion = "x" }, "MinClusterVersion"},
		{"URL with a path", func(c *Config) { c.LocalURLs = []string{"http://127.0.0.1:2380/x"} }, "must not contain a path"},
		{"negative dial timeout", func(c *Config) { c.DialTimeout = -time.Second }, "DialTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			tr, err := New(c)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				tr.Stop()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// Defaults are documented values, filled by New, not by Validate.
	d := ok.withDefaults()
	if d.ServerVersion != "3.6.0" || d.MinClusterVersion != "3.0.0" || d.DialTimeout != 2*time.Second || d.Logger == nil {
		t.Errorf("defaults %+v", d)
	}
	if ok.ServerVersion != "" {
		t.Error("withDefaults changed its receiver")
	}
}

// A raft refusal of a pipeline message answers 500 with etcd's text.
func TestPipelineProcessError(t *testing.T) {
	n := newNode(t, 1, cluster)
	n.raft.processErr = errors.New("raft is stopping")
	body, _ := (&raftpb.Message{Type: raftpb.MsgHeartbeat, From: 2, To: 1}).Marshal()
	req := httptest.NewRequest("POST", "/raft", bytes.NewReader(body))
	req.Header.Set("X-Server-Version", "3.6.16")
	req.Header.Set("X-Min-Cluster-Version", "3.0.0")
	req.Header.Set("X-Etcd-Cluster-ID", "abc")
	rec := httptest.NewRecorder()
	n.tr.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError || rec.Body.String() != "error processing raft message\n" {
		t.Fatalf("got %d %q", rec.Code, rec.Body.String())
	}
}

// A second stream of the same type from the same peer replaces the first;
// the replaced one ends cleanly and its reader dials again.
func TestNewStreamReplacesOld(t *testing.T) {
	a, b := newNode(t, 1, cluster), newNode(t, 2, cluster)
	connect(a, b)
	waitFor(t, 5*time.Second, "streams", func() bool { return streamsUp(a, 2) && streamsUp(b, 1) })
	dials := a.dials.Load()
	req := mustRequest(t, "GET", a.url()+"/raft/stream/message/2")
	b.tr.setRequestHeaders(req.Header)
	req.Header.Set("X-Raft-To", "1")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("dial: %v %v", resp, err)
	}
	defer resp.Body.Close()
	waitFor(t, 5*time.Second, "the old stream to be closed", func() bool {
		return logged(a.logs, "closed TCP streaming connection with remote peer")
	})
	// b's reader lost its stream cleanly (EOF) and redials, which replaces
	// ours in turn; b never went inactive for a.
	waitFor(t, 5*time.Second, "b to redial", func() bool { return a.dials.Load() > dials+1 })
	if logged(b.logs, "peer became inactive (message send to peer failed)") {
		t.Error("a replaced stream made the peer inactive")
	}
}

// When a peer goes away, the next write on its stream fails: the peer
// becomes inactive, raft hears it is unreachable, and sending falls back
// to the pipeline.
func TestPeerBecomesInactiveWhenItStops(t *testing.T) {
	a, b := newNode(t, 1, cluster), newNode(t, 2, cluster)
	connect(a, b)
	waitFor(t, 5*time.Second, "streams", func() bool { return streamsUp(a, 2) && streamsUp(b, 1) })
	b.close()
	waitFor(t, 10*time.Second, "a to see b inactive", func() bool { return a.tr.ActiveSince(2).IsZero() })
	if !logged(a.logs, "peer became inactive (message send to peer failed)") {
		t.Error("no inactive log line")
	}
	waitFor(t, 5*time.Second, "a's writers to detach", func() bool {
		p := a.tr.peer(2)
		_, ok1 := p.msgWriter.writec()
		_, ok2 := p.appWriter.writec()
		return !ok1 && !ok2
	})
	a.tr.Send([]raftpb.Message{{Type: raftpb.MsgApp, From: 1, To: 2, Term: 1}})
	waitFor(t, 5*time.Second, "unreachable report from the failed pipeline POST", func() bool {
		for _, id := range a.raft.unreachables() {
			if id == 2 {
				return true
			}
		}
		return false
	})
}

// A peer whose process is gone refuses connections: PeerRefused says so
// (raftnode then campaigns early), and says no while its streams are up.
func TestPeerRefusedWhenItsProcessIsGone(t *testing.T) {
	a, b := newNode(t, 1, cluster), newNode(t, 2, cluster)
	connect(a, b)
	waitFor(t, 5*time.Second, "streams", func() bool { return streamsUp(a, 2) && streamsUp(b, 1) })
	if a.tr.PeerRefused(2) {
		t.Fatal("PeerRefused(2) with its streams up")
	}
	if a.tr.PeerRefused(3) {
		t.Fatal("PeerRefused of an unknown member")
	}
	b.close()
	waitFor(t, 10*time.Second, "a to find b's URL refusing connections", func() bool { return a.tr.PeerRefused(2) })
}
