package framework

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fakePeer is an HTTP server that answers like a member's peer handler: a
// stream GET writes a line every 10 ms until the client goes, a POST to
// /raft reads the body and answers the body's SHA-256, anything else 200.
func fakePeer(t *testing.T) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/raft/stream/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "tick %d\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	mux.HandleFunc("/raft", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		io.Copy(h, r.Body)
		fmt.Fprintf(w, "%x", h.Sum(nil))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }
}

// peerClient sends requests as member id (0: no X-Server-From header).
type peerClient struct {
	id uint64
	tr *http.Transport
	c  *http.Client
}

func newPeerClient(id uint64) *peerClient {
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	return &peerClient{id: id, tr: tr, c: &http.Client{Transport: tr, Timeout: 3 * time.Second}}
}

func (pc *peerClient) do(method, url string, body io.Reader) (string, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return "", err
	}
	if pc.id != 0 {
		req.Header.Set("X-Server-From", fmt.Sprintf("%x", pc.id))
	}
	resp, err := pc.c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func proxyGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "framework.(*PeerProxy)") || strings.Contains(g, "framework.(*pump)") {
			n++
		}
	}
	return n
}

func TestPeerNet(t *testing.T) {
	addrA, stopA := fakePeer(t)
	defer stopA()
	addrB, stopB := fakePeer(t)
	defer stopB()
	pn := NewPeerNet()
	pa, err := pn.AddProxy("a", "127.0.0.1:0", addrA)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := pn.AddProxy("b", "127.0.0.1:0", addrB)
	if err != nil {
		t.Fatal(err)
	}
	pn.SetMemberID("a", 0xa)
	pn.SetMemberID("b", 0xb)
	fromA, fromB, anon := newPeerClient(0xa), newPeerClient(0xb), newPeerClient(0)
	defer func() {
		for _, c := range []*peerClient{fromA, fromB, anon} {
			c.tr.CloseIdleConnections()
		}
	}()
	toA, toB := "http://"+pa.Addr, "http://"+pb.Addr

	// Bytes pass unchanged: a large chunked body and a fixed-length one.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	want := fmt.Sprintf("%x", sha256.Sum256(big))
	pr, pw := io.Pipe()
	go func() { pw.Write(big); pw.Close() }()
	if got, err := fromA.do("POST", toB+"/raft", pr); err != nil || got != want {
		t.Fatalf("chunked POST a→b: %q, %v", got, err)
	}
	if got, err := fromB.do("POST", toA+"/raft", bytes.NewReader(big)); err != nil || got != want {
		t.Fatalf("POST b→a: %q, %v", got, err)
	}
	// A probe first, then a POST from a on the same kept-alive connection:
	// the POST names the sender.
	if _, err := anon.do("GET", toB+"/raft/probing", nil); err != nil {
		t.Fatal(err)
	}
	anon.id = 0xa
	if _, err := anon.do("POST", toB+"/raft", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	anon.id = 0

	// A stream b reads from a (a's messages to b).
	req, _ := http.NewRequest("GET", toA+"/raft/stream/message/b", nil)
	req.Header.Set("X-Server-From", "b")
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sr := bufio.NewReader(resp.Body)
	if _, err := sr.ReadString('\n'); err != nil {
		t.Fatal(err)
	}

	before := pn.Stats()
	pn.Partition([]string{"a"}, []string{"b"})
	streamCut := make(chan error, 1)
	go func() {
		for {
			if _, err := sr.ReadString('\n'); err != nil {
				streamCut <- err
				return
			}
		}
	}()
	select {
	case <-streamCut:
	case <-time.After(2 * time.Second):
		t.Fatal("stream b←a still open after the partition")
	}
	// New connections, not the cut idle ones, must be refused too.
	fromA.tr.CloseIdleConnections()
	fromB.tr.CloseIdleConnections()
	if _, err := fromA.do("POST", toB+"/raft", strings.NewReader("x")); err == nil {
		t.Fatal("POST a→b passed the partition")
	}
	if _, err := fromB.do("POST", toA+"/raft", strings.NewReader("x")); err == nil {
		t.Fatal("POST b→a passed the partition")
	}
	if _, err := anon.do("GET", toB+"/raft/probing", nil); err != nil {
		t.Fatalf("a probe (no sender) is not partitioned: %v", err)
	}
	st := pn.Stats()
	if st.Cut <= before.Cut || st.Refused < before.Refused+2 {
		t.Fatalf("stats after the partition: %+v (before %+v)", st, before)
	}

	pn.Heal()
	if _, err := fromA.do("POST", toB+"/raft", strings.NewReader("x")); err != nil {
		t.Fatalf("POST a→b after heal: %v", err)
	}

	pn.Isolate("b")
	if _, err := anon.do("GET", toB+"/raft/probing", nil); err == nil {
		t.Fatal("a probe reached the isolated member")
	}
	if _, err := fromB.do("POST", toA+"/raft", strings.NewReader("x")); err == nil {
		t.Fatal("POST from the isolated member passed")
	}
	pn.Heal()

	pn.Delay("b", 150*time.Millisecond, 0)
	start := time.Now()
	if _, err := fromA.do("POST", toB+"/raft", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("round trip through a 150 ms delay each way took %v", d)
	}
	pn.Heal()
	start = time.Now()
	if _, err := fromA.do("POST", toB+"/raft", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("round trip after heal took %v", d)
	}

	// One way: a's messages to b are blocked (a's POSTs to b, the
	// stream b reads from a), b's to a still flow.
	openStream := func(url string, from string) error {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Server-From", from)
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 2 * time.Second}).Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = bufio.NewReader(resp.Body).ReadString('\n')
		return err
	}
	pn.Block("a", "b")
	fromA.tr.CloseIdleConnections()
	fromB.tr.CloseIdleConnections()
	if _, err := fromA.do("POST", toB+"/raft", strings.NewReader("x")); err == nil {
		t.Fatal("POST a→b passed the one-way block a→b")
	}
	if err := openStream(toA+"/raft/stream/message/b", "b"); err == nil {
		t.Fatal("the stream b reads from a passed the one-way block a→b")
	}
	if _, err := fromB.do("POST", toA+"/raft", strings.NewReader("x")); err != nil {
		t.Fatalf("POST b→a under the one-way block a→b: %v", err)
	}
	if err := openStream(toB+"/raft/stream/message/a", "a"); err != nil {
		t.Fatalf("the stream a reads from b under the one-way block a→b: %v", err)
	}
	pn.Heal()
	if err := openStream(toA+"/raft/stream/message/b", "b"); err != nil {
		t.Fatalf("the stream b reads from a after heal: %v", err)
	}

	// Drop: every chunk to b lost, so nothing gets through; heal.
	pn.Drop("b", 1)
	before = pn.Stats()
	if _, err := fromA.do("POST", toB+"/raft", strings.NewReader("x")); err == nil {
		t.Fatal("POST a→b passed a drop of every chunk")
	}
	if st := pn.Stats(); st.Dropped <= before.Dropped {
		t.Fatalf("no dropped chunk counted: %+v", st)
	}
	pn.Heal()
	fromA.tr.CloseIdleConnections()
	if _, err := fromA.do("POST", toB+"/raft", strings.NewReader("x")); err != nil {
		t.Fatalf("POST a→b after heal: %v", err)
	}

	// Snapshot requests are counted per destination.
	if _, err := fromA.do("POST", toB+"/raft/snapshot", strings.NewReader("snap")); err != nil {
		t.Fatal(err)
	}
	if n := pn.Snapshots("b"); n != 1 {
		t.Fatalf("snapshots to b: %d, want 1", n)
	}

	if proxyGoroutines() == 0 {
		t.Fatal("no proxy goroutines seen while running (the leak check would be blind)")
	}
	pn.Close()
	if n := proxyGoroutines(); n != 0 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d proxy goroutines left after Close:\n%s", n, buf[:runtime.Stack(buf, true)])
	}
	if _, err := fromA.do("POST", toB+"/raft", strings.NewReader("x")); err == nil {
		t.Fatal("POST through a closed proxy")
	}
}
