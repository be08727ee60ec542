package harness

import (
	"context"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// growShrinkWorkload: the paced put load of maint.go on a 3-member cluster
// while it grows to 5 and back, the way an operator does it safely: each new
// member is added as a learner (MemberAdd --learner), started with
// --initial-cluster-state existing, promoted once it has caught up
// (MemberPromote, retried while the leader says it is not in sync), then the
// two are removed again, one at a time. Reported: put p99 while growing,
// while shrinking and outside, and the elections (raft term increments) of
// each half — issue 12 asks for at most one leader change each way.
func growShrinkWorkload(sz Sizes) workload {
	return workload{
		name: "grow-shrink", server: true, members: clusterSize,
		desc: fmt.Sprintf("3-member cluster under %d clients putting %d/s (each client connected to the 3 original "+
			"members): two learners added, started, caught up and promoted (3 → 5), then both removed (5 → 3); put "+
			"latency while growing and while shrinking (failed puts counted, not a run failure), elections = raft term "+
			"increments in each half", maintClients, maintRate),
		metrics: []metricDef{
			{"grow_p99_ms", "put p99 while growing 3 → 5", "ms", false},
			{"shrink_p99_ms", "put p99 while shrinking 5 → 3", "ms", false},
			{"outside_p99_ms", "put p99 before and after", "ms", false},
			{"grow_s", "time to add, start, catch up and promote two members", "s", false},
			{"shrink_s", "time until both removals are accepted", "s", false},
			{"elections_grow", "elections while growing", "terms", false},
			{"elections_shrink", "elections while shrinking", "terms", false},
			{"failed_puts", "paced puts failed", "puts", false},
			{"rps", "put rate achieved (target " + fmt.Sprint(maintRate) + ")", "puts/s", true},
		},
		clusterRun: func(ctx context.Context, r *runner, c *cluster) (runOut, error) {
			var grow, shrink [2]time.Time
			var termGrow, termShrink uint64
			u, err := runUnderLoad(ctx, c.endpoints, sz.MaintWarmup, sz.MaintTail,
				func(ctx context.Context, _ *pacedRun) (time.Time, error) {
					t0, err := c.term(ctx)
					if err != nil {
						return time.Time{}, err
					}
					grow[0] = time.Now()
					var added []uint64
					for range 2 {
						id, err := c.addLearner(ctx, r.nextIP())
						if err != nil {
							return grow[0], err
						}
						added = append(added, id)
					}
					grow[1] = time.Now()
					t1, err := c.term(ctx)
					if err != nil {
						return grow[0], err
					}
					shrink[0] = time.Now()
					for i := len(added) - 1; i >= 0; i-- {
						if err := c.removeMember(ctx, added[i]); err != nil {
							return grow[0], err
						}
					}
					shrink[1] = time.Now()
					if err := c.waitRemovedStopped(ctx); err != nil {
						return grow[0], err
					}
					t2, err := c.term(ctx)
					if err != nil {
						return grow[0], err
					}
					termGrow, termShrink = t1-t0, t2-t1
					return grow[0], nil
				})
			out := runOut{m: &u.m, expected: u.issued, errorsMeasured: true}
			if err != nil {
				return out, err
			}
			if u.opErr != nil {
				return out, fmt.Errorf("grow-shrink: %w", u.opErr)
			}
			var during [2][]float64
			var outside []float64
			failed := 0
			for _, s := range u.samples {
				if s.err != "" {
					failed++
					continue
				}
				end := s.start.Add(s.lat)
				switch {
				case s.start.Before(grow[1]) && end.After(grow[0]):
					during[0] = append(during[0], s.lat.Seconds())
				case s.start.Before(shrink[1]) && end.After(shrink[0]):
					during[1] = append(during[1], s.lat.Seconds())
				default:
					outside = append(outside, s.lat.Seconds())
				}
			}
			if len(during[0]) == 0 || len(during[1]) == 0 || len(outside) == 0 {
				return out, fmt.Errorf("%d puts while growing, %d while shrinking, %d outside: need all three",
					len(during[0]), len(during[1]), len(outside))
			}
			out.values = map[string]float64{
				"grow_p99_ms":      pctl(sortedCopy(during[0]), 99) * 1000,
				"shrink_p99_ms":    pctl(sortedCopy(during[1]), 99) * 1000,
				"outside_p99_ms":   pctl(sortedCopy(outside), 99) * 1000,
				"grow_s":           grow[1].Sub(grow[0]).Seconds(),
				"shrink_s":         shrink[1].Sub(shrink[0]).Seconds(),
				"elections_grow":   float64(termGrow),
				"elections_shrink": float64(termShrink),
				"failed_puts":      float64(failed),
				"rps":              u.m.RPS,
			}
			return out, nil
		},
	}
}

// memberChangeTimeout bounds one membership step (add and start, catch up
// and promote, or remove).
const memberChangeTimeout = 2 * time.Minute

// term is the highest raft term the members still running report; a
// member that does not answer in time (one just joining may be busy
// installing a snapshot) is left out, but at least one must answer.
func (c *cluster) term(ctx context.Context) (uint64, error) {
	var term uint64
	var lastErr error
	for i, s := range c.members {
		if c.wasKilled(i) {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := s.cli.Status(sctx, s.endpoint)
		cancel()
		if err != nil {
			lastErr = fmt.Errorf("status %s: %w", s.endpoint, err)
			continue
		}
		term = max(term, st.RaftTerm)
	}
	if term == 0 {
		return 0, lastErr
	}
	return term, nil
}

// addLearner adds a member on ip as a learner, starts it joining the
// cluster, and promotes it once the leader finds it in sync. It returns the
// new member's ID.
func (c *cluster) addLearner(ctx context.Context, ip string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, memberChangeTimeout)
	defer cancel()
	s, peer, err := newServer(c.sys, c.root, ip)
	if err != nil {
		return 0, err
	}
	name := fmt.Sprintf("m%d", len(c.members))
	var resp *clientv3.MemberAddResponse
	err = retryWhile(ctx, errUnhealthy, func() (err error) {
		resp, err = c.cli.MemberAddAsLearner(ctx, []string{peer})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("member add --learner %s: %w", peer, err)
	}
	var initial []string
	for _, m := range resp.Members {
		n := m.Name
		if m.ID == resp.Member.ID {
			n = name
		}
		for _, u := range m.PeerURLs {
			initial = append(initial, n+"="+u)
		}
	}
	args := append(memberArgs(s, name, peer),
		"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "existing")
	if err := s.launch(c.procs, append(args, c.extra...)); err != nil {
		return 0, err
	}
	cli, err := newClient(s.endpoint)
	if err != nil {
		return 0, err
	}
	s.cli = cli
	c.mu.Lock()
	c.members = append(c.members, s)
	if c.joined == nil {
		c.joined = map[uint64]int{}
	}
	c.joined[resp.Member.ID] = len(c.members) - 1
	c.mu.Unlock()
	err = retryWhile(ctx, errNotInSync, func() error {
		if !s.alive() {
			return fmt.Errorf("joining member %s exited (%v)\n%s", s.endpoint, s.waitErr, s.logTail())
		}
		_, err := c.cli.MemberPromote(ctx, resp.Member.ID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("member promote %x: %w", resp.Member.ID, err)
	}
	return resp.Member.ID, nil
}

// The refusals a membership step waits out: the strict reconfiguration
// check refuses a change until every member has been connected for 5 s
// (after a start or the previous change), and a promotion until the learner
// has caught up. An operator retries both.
const (
	errUnhealthy = "etcdserver: unhealthy cluster"
	errNotInSync = "learner member which is in sync with leader"
)

// retryWhile calls fn every 100 ms while its error contains refusal, until
// ctx ends.
func retryWhile(ctx context.Context, refusal string, fn func() error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := fn()
		if err == nil || !strings.Contains(err.Error(), refusal) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
	}
}

// removeMember removes member id (waitRemovedStopped waits for its process
// to exit).
func (c *cluster) removeMember(ctx context.Context, id uint64) error {
	ctx, cancel := context.WithTimeout(ctx, memberChangeTimeout)
	defer cancel()
	c.mu.Lock()
	idx, ok := c.joined[id]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("member %x was not added by this run", id)
	}
	c.mu.Lock()
	c.killed[idx] = true // it is meant to stop
	c.mu.Unlock()
	if err := retryWhile(ctx, errUnhealthy, func() error {
		_, err := c.cli.MemberRemove(ctx, id)
		return err
	}); err != nil {
		return fmt.Errorf("member remove %x: %w", id, err)
	}
	return nil
}

// waitRemovedStopped waits for the processes of the members this run
// removed to exit (a removed etcd or cairn member stops on its own).
func (c *cluster) waitRemovedStopped(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, memberChangeTimeout)
	defer cancel()
	c.mu.Lock()
	var removed []*server
	for _, i := range c.joined {
		if c.killed[i] {
			removed = append(removed, c.members[i])
		}
	}
	c.mu.Unlock()
	for _, s := range removed {
		select {
		case <-s.exited:
		case <-ctx.Done():
			return fmt.Errorf("removed member %s did not stop", s.endpoint)
		}
	}
	return nil
}
