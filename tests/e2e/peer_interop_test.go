package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/rafthttp"
	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// rawMember is a cluster member made of a rafthttp.Transport and a bare
// raft.RawNode loop: no WAL, no state machine; it keeps the log in memory
// and applies only conf changes. Enough to prove the wire format against a
// real etcd.
type rawMember struct {
	id    uint64
	rn    *raft.RawNode
	st    *raft.MemoryStorage
	tr    *rafthttp.Transport
	srv   *http.Server
	recvc chan raftpb.Message
	reqc  chan func()
	stopc chan struct{}
	donec chan struct{}

	mu        sync.Mutex // protects lead and committed
	lead      uint64
	committed []raftpb.Entry // normal entries with data, in log order
}

// Raft interface: messages and reports go to the loop goroutine.

func (m *rawMember) Process(ctx context.Context, msg raftpb.Message) error {
	select {
	case m.recvc <- msg:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-m.stopc:
		return errors.New("stopped")
	}
}

func (m *rawMember) IsIDRemoved(uint64) bool { return false }

func (m *rawMember) ReportUnreachable(id uint64) { m.do(func() { m.rn.ReportUnreachable(id) }) }

func (m *rawMember) ReportSnapshot(id uint64, s raft.SnapshotStatus) {
	m.do(func() { m.rn.ReportSnapshot(id, s) })
}

func (m *rawMember) do(f func()) {
	select {
	case m.reqc <- f:
	case <-m.stopc:
	}
}

func (m *rawMember) leader() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lead
}

// hasPut reports whether a committed entry is etcd's Put of key.
func (m *rawMember) hasPut(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.committed {
		var r pb.InternalRaftRequest
		if r.Unmarshal(e.Data) == nil && r.Put != nil && string(r.Put.Key) == key {
			return true
		}
	}
	return false
}

func (m *rawMember) run() {
	defer close(m.donec)
	tick := time.NewTicker(100 * time.Millisecond) // etcd's --heartbeat-interval
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			m.rn.Tick()
		case msg := <-m.recvc:
			_ = m.rn.Step(msg)
		case f := <-m.reqc:
			f()
		case <-m.stopc:
			return
		}
		for m.rn.HasReady() {
			rd := m.rn.Ready()
			if !raft.IsEmptyHardState(rd.HardState) {
				_ = m.st.SetHardState(rd.HardState)
			}
			_ = m.st.Append(rd.Entries)
			m.tr.Send(rd.Messages)
			m.mu.Lock()
			if rd.SoftState != nil {
				m.lead = rd.SoftState.Lead
			}
			for _, e := range rd.CommittedEntries {
				switch {
				case e.Type == raftpb.EntryConfChange:
					var cc raftpb.ConfChange
					if err := cc.Unmarshal(e.Data); err == nil {
						m.rn.ApplyConfChange(cc)
					}
				case len(e.Data) > 0:
					m.committed = append(m.committed, e)
				}
			}
			m.mu.Unlock()
			m.rn.Advance(rd)
		}
	}
}

func (m *rawMember) stop() {
	m.tr.Stop()
	close(m.stopc)
	<-m.donec
	m.srv.Close()
}

// memberContext is the conf-change context etcd writes for a bootstrap
// member (spec 8.3).
func memberContext(t *testing.T, id uint64, peerURL, name string) []byte {
	b, err := json.Marshal(struct {
		ID       uint64   `json:"id"`
		PeerURLs []string `json:"peerURLs"`
		Name     string   `json:"name"`
	}{id, []string{peerURL}, name})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPeerInteropWithEtcd runs one real etcd 3.6.16 member and one member
// made of cairn's transport and a raft loop in a two-member static
// cluster: they elect a leader, etcd serves writes that reach the other
// member's log, and they do so again after leadership moves to the other
// side, so that each side's stream writers are read by the other's
// readers.
func TestPeerInteropWithEtcd(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	const token = "peer-interop"
	e := framework.NewMember(t, ref.Etcd, "e1")
	cPeer := fmt.Sprintf("http://127.0.0.1:%d", framework.FreePort(t, "127.0.0.1"))
	eID := membership.ComputeMemberID([]string{e.Peer}, token, nil)
	cID := membership.ComputeMemberID([]string{cPeer}, token, nil)
	clusterID := membership.ComputeClusterID([]uint64{eID, cID})

	// The in-process member, up before etcd so etcd finds it.
	m := &rawMember{
		id: cID, st: raft.NewMemoryStorage(),
		recvc: make(chan raftpb.Message, 4096), reqc: make(chan func()),
		stopc: make(chan struct{}), donec: make(chan struct{}),
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID: cID, ElectionTick: 10, HeartbeatTick: 1, Storage: m.st,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 512, CheckQuorum: true, PreVote: true,
		Logger: &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)},
	})
	if err != nil {
		t.Fatal(err)
	}
	peers := []raft.Peer{
		{ID: eID, Context: memberContext(t, eID, e.Peer, "e1")},
		{ID: cID, Context: memberContext(t, cID, cPeer, "c2")},
	}
	slices.SortFunc(peers, func(a, b raft.Peer) int { return cmp.Compare(a.ID, b.ID) })
	if err := rn.Bootstrap(peers); err != nil {
		t.Fatal(err)
	}
	m.rn = rn
	logger := zap.NewNop()
	if testing.Verbose() {
		logger, _ = zap.NewDevelopment()
	}
	m.tr, err = rafthttp.New(rafthttp.Config{
		Logger: logger, LocalID: cID, ClusterID: clusterID, LocalURLs: []string{cPeer},
		DialTimeout: 2 * time.Second, Raft: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.tr.AddPeer(eID, []string{e.Peer})
	mux := http.NewServeMux()
	mux.Handle("/raft", m.tr.Handler())
	mux.Handle("/raft/", m.tr.Handler())
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"etcdserver":"3.6.0","etcdcluster":"3.6.0","storage":"3.6.0"}`)
	})
	l, err := net.Listen("tcp", strings.TrimPrefix(cPeer, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	m.srv = &http.Server{Handler: mux, ReadTimeout: 5 * time.Minute}
	go m.srv.Serve(rafthttp.NewListener(l))
	go m.run()
	t.Cleanup(m.stop)

	e.OverrideArgs = []string{
		"--name", "e1", "--data-dir", e.DataDir,
		"--listen-client-urls", e.Client, "--advertise-client-urls", e.Client,
		"--listen-peer-urls", e.Peer, "--initial-advertise-peer-urls", e.Peer,
		"--initial-cluster", "e1=" + e.Peer + ",c2=" + cPeer,
		"--initial-cluster-token", token, "--initial-cluster-state", "new",
	}
	e.Start()
	e.WaitReady(60 * time.Second)
	c := e.Client3()
	defer c.Close()

	put := func(key string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.Put(ctx, key, "v-"+key); err != nil {
			t.Fatalf("put %s: %v\n%s", key, err, e.Log())
		}
		resp, err := c.Get(ctx, key)
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v-"+key {
			t.Fatalf("get %s: %v %v", key, resp, err)
		}
		waitWithin(t, 10*time.Second, "the put in the in-process member's log", func() bool { return m.hasPut(key) })
	}

	put("k1")
	first := m.leader()
	if first != eID && first != cID {
		t.Fatalf("leader %x is neither member", first)
	}
	t.Logf("first leader: %x (etcd %x, in-process %x)", first, eID, cID)
	// Move leadership to the other side (a follower's request is
	// forwarded to the leader by raft), then write again.
	other := eID
	if first == eID {
		other = cID
	}
	m.do(func() { m.rn.TransferLeader(other) })
	waitWithin(t, 20*time.Second, "leadership to move", func() bool { return m.leader() == other })
	put("k2")

	// Idle past the transport's 5 s read deadline: raft heartbeats take the
	// message stream, so only etcd's link heartbeats keep the msgapp stream
	// we read alive. (The reverse cannot be seen from here: etcd 3.6.16's
	// stream client sets its per-read timeout through http.Transport.Dial,
	// which its DialContext overrides, so etcd never times out a stream
	// it reads.)
	since := m.tr.ActiveSince(eID)
	if since.IsZero() {
		t.Fatal("etcd member not active for the transport")
	}
	idle := time.NewTimer(7 * time.Second) // the idle period under test
	<-idle.C
	if got := m.tr.ActiveSince(eID); !got.Equal(since) {
		t.Errorf("the transport saw etcd inactive while idle (active since %v, then %v)", since, got)
	}
	put("k3")
	logText := e.Log()
	for _, want := range []string{
		`"stream-reader-type":"stream MsgApp v2"`, `"stream-reader-type":"stream Message"`,
		`"stream-writer-type":"stream MsgApp v2"`, `"stream-writer-type":"stream Message"`,
	} {
		if !strings.Contains(logText, want) {
			t.Errorf("etcd's log lacks %s", want)
		}
	}
	for _, bad := range []string{"peer became inactive", "lost TCP streaming connection", "failed to process",
		"request cluster ID mismatch", "panic"} {
		if strings.Contains(logText, bad) {
			t.Errorf("etcd logged %q:\n%s", bad, logText)
		}
	}
}

// waitWithin polls cond until it holds or d passes.
func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}
