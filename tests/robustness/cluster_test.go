package robustness

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/tests/framework"
)

// memberState is what the harness did to a member last.
type memberState int

const (
	running memberState = iota
	killed
	paused
)

// cluster is a static cluster of real server processes, member i on
// 127.0.0.<i+1>, each member's peer traffic through a proxy of net: the
// member listens on its real peer port and advertises the proxy's.
type cluster struct {
	t       testing.TB
	members []*framework.Member
	net     *framework.PeerNet
	ids     map[string]uint64 // member name → member ID

	// What a member the harness adds later (a grow-shrink fault's spare)
	// is made from.
	dir   string
	bins  []string
	flags []string
	env   []string
	// spares are members made after the start, not in members: no traffic
	// or watcher uses them and the checks skip them, but their logs are
	// checked.
	spares []*framework.Member
	// restores are what snapshot-restore faults saw, for validation
	// (snapshot_restore_test.go).
	restores []*restoreCheck

	mu    sync.Mutex
	state map[string]memberState
}

// newMember prepares member i (name m<i+1>, host 127.0.0.<i+1>, binary
// bins[i % len(bins)]) with its proxy, without starting it.
func (c *cluster) newMember(i int) (*framework.Member, error) {
	host := fmt.Sprintf("127.0.0.%d", i+1)
	name := fmt.Sprintf("m%d", i+1)
	m := framework.NewMember(c.t, c.bins[i%len(c.bins)], name, c.flags...)
	m.Host = host
	// Three distinct ports: a port FreePort returned is free again
	// at once, so a proxy listening on port 0 could be given the
	// client port (it happened).
	ports := distinctPorts(c.t, host, 3)
	m.Client = fmt.Sprintf("http://%s:%d", host, ports[0])
	real := fmt.Sprintf("%s:%d", host, ports[1])
	p, err := c.net.AddProxy(name, fmt.Sprintf("%s:%d", host, ports[2]), real)
	if err != nil {
		return nil, err
	}
	m.ListenPeer = "http://" + real
	m.Peer = "http://" + p.Addr
	m.DataDir = filepath.Join(c.dir, name+".data")
	m.LogPath = filepath.Join(c.dir, name+".log")
	m.Env = c.env
	m.Extra = append([]string{"--initial-cluster-token", "cairn-robustness"}, m.Extra...)
	return m, nil
}

// startCluster starts n members running bins[i % len(bins)] with data dirs
// and logs in dir, waits until each serves a linearizable read, and tells
// the proxies the members' IDs.
func startCluster(t testing.TB, dir string, bins []string, n int, flags, env []string) (*cluster, error) {
	c := &cluster{t: t, net: framework.NewPeerNet(), ids: map[string]uint64{}, state: map[string]memberState{},
		dir: dir, bins: bins, flags: flags, env: env}
	t.Cleanup(func() { c.net.Close() })
	var pairs []string
	for i := 0; i < n; i++ {
		m, err := c.newMember(i)
		if err != nil {
			return nil, err
		}
		c.members = append(c.members, m)
		c.state[m.Name] = running
		pairs = append(pairs, m.Name+"="+m.Peer)
	}
	for _, m := range c.members {
		m.InitialCluster = strings.Join(pairs, ",")
	}
	for _, m := range c.members {
		m.Start()
	}
	for _, m := range c.members {
		if err := c.waitReady(m, 60*time.Second); err != nil {
			return nil, err
		}
	}
	cl := c.client(c.members[0])
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ml, err := cl.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("member list: %w", err)
	}
	for _, mm := range ml.Members {
		for _, m := range c.members {
			if len(mm.PeerURLs) > 0 && samePeerURL(mm.PeerURLs[0], m.Peer) {
				c.ids[m.Name] = mm.ID
				c.net.SetMemberID(m.Name, mm.ID)
			}
		}
	}
	if len(c.ids) != n {
		return nil, fmt.Errorf("member list %v does not name the %d advertised proxy URLs", ml.Members, n)
	}
	return c, nil
}

func samePeerURL(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Host == ub.Host
}

// clientOf returns a client balanced over the named members.
func (c *cluster) clientOf(names ...string) *clientv3.Client {
	var eps []string
	for _, n := range names {
		eps = append(eps, c.member(n).Client)
	}
	cl, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		c.t.Fatal(err) // only on a malformed endpoint
	}
	return cl
}

// client returns a client pinned to member m.
func (c *cluster) client(m *framework.Member) *clientv3.Client {
	cl, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{m.Client},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		c.t.Fatal(err) // only on a malformed endpoint
	}
	return cl
}

// member returns the member named name.
func (c *cluster) member(name string) *framework.Member {
	for _, m := range append(c.members[:len(c.members):len(c.members)], c.spares...) {
		if m.Name == name {
			return m
		}
	}
	return nil
}

func (c *cluster) setState(name string, s memberState) {
	c.mu.Lock()
	c.state[name] = s
	c.mu.Unlock()
}

func (c *cluster) getState(name string) memberState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state[name]
}

// waitReady waits until m serves a linearizable read.
func (c *cluster) waitReady(m *framework.Member, timeout time.Duration) error {
	cl := c.client(m)
	defer cl.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cl.Get(ctx, "health")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-m.Done():
			return fmt.Errorf("%s exited: %v", m.Name, m.ExitErr())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s serves no linearizable read after %v: %w", m.Name, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitAllReady waits until every member serves a linearizable read.
func (c *cluster) waitAllReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, m := range c.members {
		if err := c.waitReady(m, time.Until(deadline)); err != nil {
			return err
		}
	}
	return nil
}

// leader returns the name of the member that the running members agree
// leads, waiting up to timeout.
func (c *cluster) leader(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		name, err := c.leaderOnce()
		if err == nil {
			return name, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no leader after %v: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) leaderOnce() (string, error) {
	var up []string
	for _, m := range c.members {
		if c.getState(m.Name) == running {
			up = append(up, m.Name)
		}
	}
	return c.leaderAmong(up)
}

// leaderAmong returns the member that the named members agree leads, when
// it is one of them.
func (c *cluster) leaderAmong(names []string) (string, error) {
	var lead uint64
	for _, name := range names {
		m := c.member(name)
		cl := c.client(m)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cl.Status(ctx, m.Client)
		cancel()
		cl.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		if st.Leader == 0 || (lead != 0 && st.Leader != lead) {
			return "", errors.New("members disagree on the leader")
		}
		lead = st.Leader
	}
	for _, name := range names {
		if c.ids[name] == lead {
			return name, nil
		}
	}
	return "", fmt.Errorf("leader %x is not among %v", lead, names)
}

// others are the names of the members other than name.
func (c *cluster) others(name string) []string {
	var out []string
	for _, m := range c.members {
		if m.Name != name {
			out = append(out, m.Name)
		}
	}
	return out
}

// distinctPorts returns n ports free on host a moment ago, all different.
func distinctPorts(t testing.TB, host string, n int) []int {
	seen := map[int]bool{}
	var out []int
	for len(out) < n {
		p := framework.FreePort(t, host)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
