package framework

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Cluster is a static cluster of server processes, member i (from 0) on
// loopback address 127.0.0.<i+1>, bootstrapped with --initial-cluster as
// etcd's static bootstrap runbook does.
type Cluster struct {
	t       testing.TB
	Members []*Member
}

// NewCluster prepares (but does not start) n members named m1..mn running
// bins[i % len(bins)], so a cluster can mix cairn and etcd binaries. extra
// flags go to every member.
func NewCluster(t testing.TB, bins []string, n int, extra ...string) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	var pairs []string
	for i := 0; i < n; i++ {
		host := fmt.Sprintf("127.0.0.%d", i+1)
		m := NewMember(t, bins[i%len(bins)], fmt.Sprintf("m%d", i+1), extra...)
		m.Host = host
		m.Client = fmt.Sprintf("http://%s:%d", host, FreePort(t, host))
		m.Peer = fmt.Sprintf("http://%s:%d", host, FreePort(t, host))
		c.Members = append(c.Members, m)
		pairs = append(pairs, m.Name+"="+m.Peer)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, m := range c.Members {
			log := m.Log()
			if len(log) > 8000 {
				log = "...\n" + log[len(log)-8000:]
			}
			t.Logf("log of %s (%s):\n%s", m.Name, m.Bin, log)
		}
	})
	ic := strings.Join(pairs, ",")
	for _, m := range c.Members {
		m.InitialCluster = ic
		m.Extra = append([]string{"--initial-cluster-token", "cairn-test-cluster"}, m.Extra...)
	}
	return c
}

// Start starts every member and waits until each serves a linearizable
// read (which needs a leader and a quorum).
func (c *Cluster) Start(timeout time.Duration) {
	c.t.Helper()
	for _, m := range c.Members {
		m.Start()
	}
	for _, m := range c.Members {
		m.WaitReady(timeout)
	}
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.Client)
	}
	return out
}

// Client returns a clientv3 client balancing over every member.
func (c *Cluster) Client() *clientv3.Client {
	c.t.Helper()
	cl, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// Leader returns the index of the member the others agree leads, waiting
// up to timeout for one.
func (c *Cluster) Leader(timeout time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if i, ok := c.leader(); ok {
			return i
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no leader after %v", timeout)
		}
		waitOrDone(nil, 50*time.Millisecond)
	}
}

func (c *Cluster) leader() (int, bool) {
	var lead uint64
	idx := -1
	for i, m := range c.Members {
		select {
		case <-m.Done():
			continue
		default:
		}
		cl := m.Client3()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cl.Status(ctx, m.Client)
		cancel()
		cl.Close()
		if err != nil || st.Leader == 0 {
			return -1, false
		}
		if lead != 0 && st.Leader != lead {
			return -1, false
		}
		lead = st.Leader
		if st.Header.MemberId == st.Leader {
			idx = i
		}
	}
	return idx, idx >= 0
}
