package robustness

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cairnkv/cairn/tests/framework"
)

// More network and process faults: one-way partitions, chunk drop, the
// whole cluster killed at once, and a follower cut off until only a
// snapshot can catch it up.

// oneWay blocks one direction between a member (the leader or a follower,
// by seed) and every other member: either it cannot send (its messages to
// the others are lost, theirs reach it) or it cannot hear. Confirmed when
// the proxies cut or refused connections.
func (in *injector) oneWay() (bool, error) {
	c := in.c
	target, err := in.pickTarget(in.rnd.IntN(2) == 0)
	if err != nil {
		return false, err
	}
	out := in.rnd.IntN(2) == 0
	before := c.net.Stats()
	for _, o := range c.others(target) {
		if out {
			c.net.Block(target, o)
		} else {
			c.net.Block(o, target)
		}
	}
	if out {
		in.event("one-way partition: %s's messages to %v lost", target, c.others(target))
	} else {
		in.event("one-way partition: %v's messages to %s lost", c.others(target), target)
	}
	time.Sleep(in.timing.hold(in.rnd))
	after := c.net.Stats()
	in.event("heal (proxies: %d connections cut, %d refused)", after.Cut-before.Cut, after.Refused-before.Refused)
	c.net.Heal()
	return after.Cut+after.Refused > before.Cut+before.Refused, nil
}

// dropChunks loses 5–30% of the chunks to and from one member for twice
// the hold (each loss ends its connection). Confirmed when chunks were
// dropped.
func (in *injector) dropChunks() (bool, error) {
	c := in.c
	target := c.members[in.rnd.IntN(len(c.members))].Name
	p := float64(5+in.rnd.IntN(26)) / 100
	before := c.net.Stats()
	in.event("drop %.0f%% of %s's peer chunks", p*100, target)
	c.net.Drop(target, p)
	time.Sleep(2 * in.timing.hold(in.rnd))
	after := c.net.Stats()
	in.event("heal (%d chunks dropped)", after.Dropped-before.Dropped)
	c.net.Heal()
	return after.Dropped > before.Dropped, nil
}

// killAll SIGKILLs every member at once, waits, and restarts them all on
// their data dirs. Every acknowledged write must survive (the store's
// history check). Confirmed when every member had exited.
func (in *injector) killAll() (bool, error) {
	c := in.c
	in.event("SIGKILL every member")
	var wg sync.WaitGroup
	for _, m := range c.members {
		c.setState(m.Name, killed)
		wg.Add(1)
		go func(m *framework.Member) {
			defer wg.Done()
			m.Kill()
		}(m)
	}
	wg.Wait()
	confirmed := true
	for _, m := range c.members {
		select {
		case <-m.Done():
		default:
			confirmed = false
		}
	}
	time.Sleep(in.timing.hold(in.rnd) / 2)
	in.event("restart every member")
	for _, m := range c.members {
		m.Start()
		c.setState(m.Name, running)
	}
	return confirmed, nil
}

// blackholeSnapshot isolates a follower until the leader's log has moved
// past its snapshot count plus its catch-up entries (the run's flags are
// small for this fault), so the leader has compacted the entries the
// follower misses, heals, and waits for the leader to send it a snapshot.
// Confirmed when a snapshot request reached the follower's proxy after the
// heal.
func (in *injector) blackholeSnapshot() (bool, error) {
	c := in.c
	lead, err := c.leader(10 * time.Second)
	if err != nil {
		return false, err
	}
	others := c.others(lead)
	target := others[in.rnd.IntN(len(others))]
	start, err := c.raftIndex(c.member(lead))
	if err != nil {
		return false, err
	}
	need := uint64(flagInt(c.flags, "--snapshot-count") + flagInt(c.flags, "--snapshot-catchup-entries") + 50)
	snaps := c.net.Snapshots(target)
	in.event("blackhole %s until the leader's log passes index %d (now %d)", target, start+need, start)
	c.net.Isolate(target)
	deadline := time.Now().Add(30 * time.Second)
	var idx uint64
	for {
		// The leader may change meanwhile; any member but the target
		// knows the cluster's progress.
		idx = 0
		for _, o := range others {
			if i, err := c.raftIndex(c.member(o)); err == nil {
				idx = max(idx, i)
			}
		}
		if idx >= start+need || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	in.event("heal %s (the others' index %d)", target, idx)
	c.net.Heal()
	for time.Now().Before(deadline.Add(30 * time.Second)) {
		if c.net.Snapshots(target) > snaps {
			in.event("a snapshot was sent to %s", target)
			return true, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	in.event("no snapshot sent to %s", target)
	return false, nil
}

// raftIndex is member m's raft index (Status).
func (c *cluster) raftIndex(m *framework.Member) (uint64, error) {
	cl := c.client(m)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := cl.Status(ctx, m.Client)
	if err != nil {
		return 0, fmt.Errorf("%s: status: %w", m.Name, err)
	}
	return st.RaftIndex, nil
}

// flagInt is the integer value of flag in flags (0 if absent).
func flagInt(flags []string, flag string) int {
	i := slices.Index(flags, flag)
	if i < 0 || i+1 >= len(flags) {
		return 0
	}
	n, _ := strconv.Atoi(flags[i+1])
	return n
}

// snapshotFlags makes a run's members snapshot often and keep little log
// for slow followers, so blackhole-snapshot's follower needs a snapshot.
func snapshotFlags(flags []string) []string {
	out := slices.Clone(flags)
	for flag, v := range map[string]string{"--snapshot-count": "100", "--snapshot-catchup-entries": "100"} {
		if i := slices.Index(out, flag); i >= 0 && i+1 < len(out) {
			if n, _ := strconv.Atoi(out[i+1]); n > 100 {
				out[i+1] = v
			}
		}
	}
	return out
}
