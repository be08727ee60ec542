package harness

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// clusterSize is the number of members of the multi-member workloads.
const clusterSize = 3

// cluster is a multi-member cluster of one system: every member on its own
// loopback address with its own fresh data dir, bootstrapped from a static
// --initial-cluster, each started through the run's process set.
type cluster struct {
	sys       System
	members   []*server
	endpoints []string
	cli       *clientv3.Client // all endpoints

	// procs, root and extra are what startCluster launched the members
	// with; members joining later (grow-shrink) get the same.
	procs *procSet
	root  string
	extra []string

	mu     sync.Mutex
	killed map[int]bool   // members killed or removed on purpose
	joined map[uint64]int // member ID → index in members, for members added by the run
}

// startCluster starts n members of sys and waits, up to readyTimeout, for
// every member to report the same leader (Status on each endpoint) and for
// a linearizable read to succeed. A member that exits during start-up with
// one of notSupportedRefusals makes the cluster "not supported".
func startCluster(ctx context.Context, procs *procSet, sys System, root string, ips []string, extra []string,
	readyTimeout time.Duration) (*cluster, error) {
	c := &cluster{sys: sys, killed: map[int]bool{}, procs: procs, root: root, extra: extra}
	var peers, initial []string
	for i, ip := range ips {
		s, peer, err := newServer(sys, root, ip)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.members = append(c.members, s)
		c.endpoints = append(c.endpoints, s.endpoint)
		peers = append(peers, peer)
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peer))
	}
	token := fmt.Sprintf("cairnbench-%d", time.Now().UnixNano())
	for i, s := range c.members {
		args := append(memberArgs(s, fmt.Sprintf("m%d", i), peers[i]),
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new", "--initial-cluster-token", token)
		if err := s.launch(procs, append(args, extra...)); err != nil {
			c.stop() // launched members are stopped, the others' dirs removed
			return nil, err
		}
	}
	if err := c.waitLeader(ctx, readyTimeout); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// waitLeader polls Status on every member until all agree on a leader that
// is one of them, then waits for a linearizable read through all endpoints.
func (c *cluster) waitLeader(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, s := range c.members {
		cli, err := newClient(s.endpoint)
		if err != nil {
			return err
		}
		s.cli = cli
	}
	cli, err := newClientTo(c.endpoints)
	if err != nil {
		return err
	}
	c.cli = cli
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		for _, s := range c.members {
			if !s.alive() {
				return s.startupExit()
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s cluster has no leader after %s: %v\n%s", c.sys.Name, timeout, lastErr, c.logTails())
		}
		lastErr = c.agreedLeader(ctx)
		if lastErr == nil {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			_, lastErr = c.cli.Get(rctx, "cairnbench-ready")
			cancel()
			if lastErr == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// agreedLeader returns nil when every member reports the same leader and
// that leader is a member.
func (c *cluster) agreedLeader(ctx context.Context) error {
	var leader uint64
	ids := map[uint64]bool{}
	for _, s := range c.members {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := s.cli.Status(sctx, s.endpoint)
		cancel()
		if err != nil {
			return fmt.Errorf("status %s: %w", s.endpoint, err)
		}
		if st.Leader == 0 || (leader != 0 && st.Leader != leader) {
			return fmt.Errorf("no agreed leader yet (%s says %x)", s.endpoint, st.Leader)
		}
		leader = st.Leader
		ids[st.Header.MemberId] = true
	}
	if !ids[leader] {
		return fmt.Errorf("leader %x is not a member", leader)
	}
	return nil
}

// leader returns the index of the member that says it is the leader.
func (c *cluster) leader(ctx context.Context) (int, error) {
	for i, s := range c.members {
		if c.wasKilled(i) {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := s.cli.Status(sctx, s.endpoint)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("status %s: %w", s.endpoint, err)
		}
		if st.Leader != 0 && st.Leader == st.Header.MemberId {
			return i, nil
		}
	}
	return 0, fmt.Errorf("no member says it is the leader")
}

// kill SIGKILLs member i's process group and waits until it is reaped.
func (c *cluster) kill(i int) {
	c.mu.Lock()
	c.killed[i] = true
	c.mu.Unlock()
	s := c.members[i]
	_ = syscall.Kill(-s.pid(), syscall.SIGKILL)
	<-s.exited
}

// restart starts killed member i again from its data dir with the flags
// it was started with.
func (c *cluster) restart(i int) error {
	if err := c.members[i].relaunch(); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.killed, i)
	c.mu.Unlock()
	return nil
}

func (c *cluster) wasKilled(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.killed[i]
}

// alive reports whether every member not killed on purpose still runs, and
// describes the first one that does not.
func (c *cluster) alive() (bool, string) {
	for i, s := range c.members {
		if !c.wasKilled(i) && !s.alive() {
			return false, fmt.Sprintf("member %s exited during the workload (%v)\n%s", s.endpoint, s.waitErr, s.logTail())
		}
	}
	return true, ""
}

// cpu is the CPU time used so far by the members still running.
func (c *cluster) cpu() (time.Duration, error) {
	var sum time.Duration
	for i, s := range c.members {
		if c.wasKilled(i) {
			continue
		}
		d, err := procCPU(s.pid())
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// stop SIGKILLs every member and removes their dirs: a graceful stop of a
// member first tries to transfer its leadership (up to etcd's 7 s request
// timeout while the others stop too), and the data is thrown away anyway.
func (c *cluster) stop() {
	if c.cli != nil {
		c.cli.Close()
	}
	var wg sync.WaitGroup
	for _, s := range c.members {
		wg.Add(1)
		go func(s *server) {
			defer wg.Done()
			if s.cmd == nil { // prepared, never launched
				_ = os.RemoveAll(s.dir)
				return
			}
			if s.alive() {
				_ = syscall.Kill(-s.pid(), syscall.SIGKILL)
			}
			s.stop()
		}(s)
	}
	wg.Wait()
}

func (c *cluster) logTails() string {
	var b strings.Builder
	for _, s := range c.members {
		b.WriteString(s.logTail())
		b.WriteString("\n")
	}
	return b.String()
}
