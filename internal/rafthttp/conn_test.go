package rafthttp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// A connection silent for the timeout breaks; one that keeps talking does
// not.
func TestListenerTimeouts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := &timeoutListener{Listener: l, rd: 200 * time.Millisecond, wr: 200 * time.Millisecond}
	defer tl.Close()
	go func() {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		for range 5 { // 5 bytes, 100 ms apart: each within the timeout
			c.Write([]byte{1})
			time.Sleep(100 * time.Millisecond) // the client's pace under test
		}
		io.Copy(io.Discard, c) // then silence until the server gives up
	}()
	c, err := tl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1)
	for i := range 5 {
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	start := time.Now()
	_, err = c.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("silent connection: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout after %v", d)
	}
	if NewListener(l).(*timeoutListener).rd != 5*time.Second {
		t.Error("NewListener does not use etcd's 5 s")
	}
}

// net/http's server aborts its background read with a past deadline when
// a request ends; the per-read deadline must not override it, or the
// connection stays busy for the whole timeout and the server's Close (or
// Shutdown) waits for it.
func TestListenerDoesNotHoldFinishedRequests(t *testing.T) {
	for i := range 5 {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}))
		srv.Listener = &timeoutListener{Listener: srv.Listener, rd: 3 * time.Second, wr: 3 * time.Second}
		srv.Start()
		tr := &http.Transport{}
		resp, err := tr.RoundTrip(mustRequest(t, "POST", srv.URL+"/raft"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // the connection stays open, idle, on the client
		start := time.Now()
		srv.Close()
		if d := time.Since(start); d > time.Second {
			t.Fatalf("round %d: Close took %v", i, d)
		}
		tr.CloseIdleConnections()
	}
}

// The peer client never offers h2 in ALPN, even when the configured TLS
// client does, and speaks HTTP/1.1.
func TestTLSClientOffersNoH2(t *testing.T) {
	var mu sync.Mutex
	var offered [][]string
	var protos []int
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos = append(protos, r.ProtoMajor)
		mu.Unlock()
		if r.URL.Path == "/raft" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.NotFound(w, r)
	}))
	srv.EnableHTTP2 = false
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes cut short by Stop
	srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		offered = append(offered, slices.Clone(h.SupportedProtos))
		mu.Unlock()
		return nil, nil
	}}
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	client := &tls.Config{RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}}

	a := newNode(t, 1, cluster, withConfig(func(c *Config) { c.TLSClient = client }))
	a.tr.AddPeer(2, []string{srv.URL})
	a.tr.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2}})
	waitFor(t, 5*time.Second, "a pipeline POST and stream dials over TLS", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(protos) >= 3
	})
	a.close()
	mu.Lock()
	defer mu.Unlock()
	for _, p := range offered {
		if slices.Contains(p, "h2") {
			t.Errorf("ALPN offered %v", p)
		}
	}
	for _, p := range protos {
		if p != 1 {
			t.Errorf("request over HTTP/%d", p)
		}
	}
	if !slices.Equal(client.NextProtos, []string{"h2", "http/1.1"}) {
		t.Errorf("the caller's TLS config was modified: %v", client.NextProtos)
	}
}
