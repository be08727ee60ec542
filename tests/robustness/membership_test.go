package robustness

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
)

// Membership faults: they change the cluster's configuration under traffic
// and watches, through the ordinary MemberAdd/Promote/Remove API.

// replaceMember removes a member (the leader, or a random follower) through
// the cluster, waits for it to stop (a removed member stops by itself; it
// is killed after 10 s), wipes its data dir, adds it back with the same
// name and peer URL (as a learner, then promoted, when the seed says so)
// and restarts it with --initial-cluster-state existing. Confirmed when the
// member exited by itself and came back under a new ID.
func (in *injector) replaceMember(leader bool) (bool, error) {
	c := in.c
	target, err := in.pickTarget(leader)
	if err != nil {
		return false, err
	}
	learner := in.rnd.IntN(2) == 0
	m := c.member(target)
	// The reconfiguration requests go to the other members (the removed
	// one stops answering).
	cl := c.clientOf(c.others(target)...)
	defer cl.Close()
	oldID := c.ids[target]
	in.event("member remove %s (%x, leader %t)", target, oldID, leader)
	if err := retry(20*time.Second, func(ctx context.Context) error {
		_, err := cl.MemberRemove(ctx, oldID)
		return err
	}); err != nil {
		return false, fmt.Errorf("member remove: %w", err)
	}
	c.setState(target, killed)
	exited := waitExit(m, 10*time.Second)
	if leader {
		// The others may name the removed leader for a moment yet.
		deadline := time.Now().Add(20 * time.Second)
		for {
			lead, err := c.leader(time.Until(deadline))
			if err != nil {
				return false, fmt.Errorf("after removing the leader: %w", err)
			}
			if lead != target {
				in.event("%s leads", lead)
				break
			}
			if time.Now().After(deadline) {
				return false, fmt.Errorf("after removing the leader: %s still named leader", target)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	in.event("%s stopped (by itself: %t); wipe %s", target, exited, m.DataDir)
	if err := os.RemoveAll(m.DataDir); err != nil {
		return false, err
	}
	newID, err := in.addAndStart(cl, m, learner)
	if err != nil {
		return false, err
	}
	return exited && newID != oldID, nil
}

// addAndStart adds m (MemberAdd, or MemberAddAsLearner) through cl, tells
// the proxies its new ID, starts it on its (empty) data dir with
// --initial-cluster-state existing and, for a learner, promotes it once it
// has caught up. It returns the new ID.
func (in *injector) addAndStart(cl *clientv3.Client, m *framework.Member, learner bool) (uint64, error) {
	c := in.c
	var newID uint64
	if err := retry(20*time.Second, func(ctx context.Context) error {
		var resp *clientv3.MemberAddResponse
		var err error
		if learner {
			resp, err = cl.MemberAddAsLearner(ctx, []string{m.Peer})
		} else {
			resp, err = cl.MemberAdd(ctx, []string{m.Peer})
		}
		if err == nil {
			newID = resp.Member.ID
		}
		return err
	}); err != nil {
		return 0, fmt.Errorf("member add %s: %w", m.Name, err)
	}
	in.event("member add %s as %x (learner %t); start it on an empty data dir", m.Name, newID, learner)
	c.ids[m.Name] = newID
	c.net.SetMemberID(m.Name, newID)
	if !slices.Contains(m.Extra, "--initial-cluster-state") {
		m.Extra = append(m.Extra, "--initial-cluster-state", "existing")
	}
	m.Start()
	c.setState(m.Name, running)
	if learner {
		// A learner is promoted once it has caught up with the leader.
		if err := retry(60*time.Second, func(ctx context.Context) error {
			_, err := cl.MemberPromote(ctx, newID)
			return err
		}); err != nil {
			return 0, fmt.Errorf("member promote %s: %w", m.Name, err)
		}
		in.event("promoted %s", m.Name)
	}
	return newID, nil
}

// growShrink grows the cluster by a spare member and shrinks it back,
// twice: first the spare joins as a learner, is promoted once in sync and
// removed; then, wiped, it joins directly as a voter, serves, and is
// removed. The spare takes no traffic and no watcher. Confirmed when both
// times the spare served a linearizable read as a voter and stopped by
// itself after its removal.
func (in *injector) growShrink() (bool, error) {
	c := in.c
	spare, err := c.newMember(len(c.members))
	if err != nil {
		return false, err
	}
	c.spares = append(c.spares, spare)
	var pairs []string
	for _, m := range c.members {
		pairs = append(pairs, m.Name+"="+m.Peer)
	}
	spare.InitialCluster = strings.Join(append(pairs, spare.Name+"="+spare.Peer), ",")
	cl := c.clientOf(c.others("")...)
	defer cl.Close()
	confirmed := true
	for _, learner := range []bool{true, false} {
		if err := os.RemoveAll(spare.DataDir); err != nil {
			return false, err
		}
		id, err := in.addAndStart(cl, spare, learner)
		if err != nil {
			return false, err
		}
		if err := c.waitReady(spare, 30*time.Second); err != nil {
			return false, fmt.Errorf("the added %s: %w", spare.Name, err)
		}
		in.event("%s serves linearizable reads; %d voters", spare.Name, len(c.members)+1)
		time.Sleep(in.timing.hold(in.rnd) / 2)
		in.event("member remove %s (%x)", spare.Name, id)
		if err := retry(20*time.Second, func(ctx context.Context) error {
			_, err := cl.MemberRemove(ctx, id)
			return err
		}); err != nil {
			return false, fmt.Errorf("member remove %s: %w", spare.Name, err)
		}
		c.setState(spare.Name, killed)
		exited := waitExit(spare, 10*time.Second)
		in.event("%s stopped (by itself: %t)", spare.Name, exited)
		confirmed = confirmed && exited
		delete(c.ids, spare.Name)
	}
	return confirmed, nil
}

// waitExit waits for m to exit by itself and says whether it did; after
// timeout it kills m.
func waitExit(m *framework.Member, timeout time.Duration) bool {
	select {
	case <-m.Done():
		return true
	case <-time.After(timeout):
		m.Kill()
		return false
	}
}
