package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"
)

// Fault kinds. Each run injects one; FaultSoak (soak_test.go) is several
// of them overlapping.
const (
	FaultKillLeader        = "kill-leader"        // SIGKILL the leader, restart it
	FaultKillFollower      = "kill-follower"      // SIGKILL a follower, restart it
	FaultPauseMember       = "pause-member"       // SIGSTOP a random member past the election timeout, SIGCONT
	FaultPauseLeader       = "pause-leader"       // the same on the leader
	FaultPartitionMinority = "partition-minority" // cut a follower from the rest through the proxies, heal
	FaultPartitionLeader   = "partition-leader"   // cut the leader from the rest, heal
	FaultBlackhole         = "blackhole"          // isolate a random member's peer traffic entirely, heal
	FaultDelay             = "delay"              // add latency to a random member's peer traffic, heal
	// FaultMemberReplace removes a follower, wipes its data dir and adds it
	// back (directly, or as a learner then promoted) under a new member ID;
	// it catches up from the leader, by snapshot when the leader's log has
	// been compacted past it.
	FaultMemberReplace = "member-replace"
	// FaultRemoveLeader does the same to the leader: it hands leadership
	// over and stops, the others go on, and it comes back wiped under a new
	// ID.
	FaultRemoveLeader = "remove-leader"
	// FaultGrowShrink adds a spare member as a learner, starts it, promotes
	// it once in sync, removes it; then adds it (wiped) directly as a
	// voter, starts it and removes it again.
	FaultGrowShrink = "grow-shrink"
	// FaultPartitionOneWay blocks one direction between a member (leader
	// or follower) and the others: it cannot send, or cannot hear.
	FaultPartitionOneWay = "partition-oneway"
	// FaultDrop loses a share of one member's peer chunks (each loss
	// ends its connection).
	FaultDrop = "drop"
	// FaultKillAll SIGKILLs every member at once and restarts them:
	// every acknowledged write must survive.
	FaultKillAll = "kill-all"
	// FaultBlackholeSnapshot isolates a follower until the leader's log
	// has been compacted past it, so it catches up by snapshot (the run's
	// members get --snapshot-count and --snapshot-catchup-entries 100 at
	// most).
	FaultBlackholeSnapshot = "blackhole-snapshot"
	// FaultNone injects nothing (the seeded-bug self-tests' runs).
	FaultNone = "none"
)

// allFaults is every kind, in the order the short mode covers them.
var allFaults = []string{
	FaultKillLeader, FaultKillFollower, FaultPauseMember, FaultPauseLeader,
	FaultPartitionMinority, FaultPartitionLeader, FaultBlackhole, FaultDelay,
	FaultMemberReplace, FaultRemoveLeader, FaultGrowShrink,
	FaultPartitionOneWay, FaultDrop, FaultKillAll, FaultBlackholeSnapshot,
	FaultSnapshotRestore,
}

// faultsFor are the kinds that apply to a cluster of n members: a single
// member has no followers and no peer traffic.
func faultsFor(n int) []string {
	if n == 1 {
		return []string{FaultKillLeader, FaultPauseMember, FaultPauseLeader, FaultKillAll, FaultSnapshotRestore}
	}
	return allFaults
}

// faultTiming are the durations a fault holds; they scale with the
// election timeout the members run with.
type faultTiming struct {
	Election time.Duration // --election-timeout
}

func (ft faultTiming) hold(rnd *rand.Rand) time.Duration {
	// 1.5 to 3 election timeouts: long enough for an election, short
	// enough to keep runs brief.
	return ft.Election*3/2 + time.Duration(rnd.Int64N(int64(ft.Election*3/2)))
}

// injector applies faults to a cluster and records them on the timeline.
type injector struct {
	c      *cluster
	rec    *recorder
	rnd    *rand.Rand
	timing faultTiming
	events []Event
}

func (in *injector) event(format string, args ...any) {
	in.events = append(in.events, Event{At: in.rec.now(), What: fmt.Sprintf(format, args...)})
}

// inject runs fault kind to its end (the fault healed, killed members
// restarted) and says whether it was confirmed: the member exited or
// stopped, or the proxies cut or refused connections.
func (in *injector) inject(kind string) (confirmed bool, err error) {
	c := in.c
	switch kind {
	case FaultKillLeader, FaultKillFollower:
		target, err := in.pickTarget(kind == FaultKillLeader)
		if err != nil {
			return false, err
		}
		m := c.member(target)
		in.event("SIGKILL %s (%s)", target, kind)
		c.setState(target, killed)
		m.Kill()
		select {
		case <-m.Done():
			confirmed = true
		default:
		}
		time.Sleep(in.timing.hold(in.rnd))
		in.event("restart %s", target)
		m.Start()
		c.setState(target, running)
		return confirmed, nil

	case FaultPauseMember, FaultPauseLeader:
		target, err := in.pickTarget(kind == FaultPauseLeader)
		if err != nil {
			return false, err
		}
		m := c.member(target)
		in.event("SIGSTOP %s (%s)", target, kind)
		c.setState(target, paused)
		if err := m.Signal(syscall.SIGSTOP); err != nil {
			c.setState(target, running)
			return false, err
		}
		// Twice the election timeout at least, so the others elect.
		time.Sleep(in.timing.Election + in.timing.hold(in.rnd))
		in.event("SIGCONT %s", target)
		if err := m.Signal(syscall.SIGCONT); err != nil {
			return true, err
		}
		c.setState(target, running)
		return true, nil

	case FaultPartitionMinority, FaultPartitionLeader, FaultBlackhole:
		var target string
		var err error
		if kind == FaultBlackhole {
			target = c.members[in.rnd.IntN(len(c.members))].Name
		} else {
			target, err = in.pickTarget(kind == FaultPartitionLeader)
			if err != nil {
				return false, err
			}
		}
		before := c.net.Stats()
		if kind == FaultBlackhole {
			in.event("blackhole %s", target)
			c.net.Isolate(target)
		} else {
			in.event("partition %s | %v (%s)", target, c.others(target), kind)
			c.net.Partition([]string{target}, c.others(target))
		}
		time.Sleep(in.timing.hold(in.rnd))
		after := c.net.Stats()
		in.event("heal (proxies: %d connections cut, %d refused)", after.Cut-before.Cut, after.Refused-before.Refused)
		c.net.Heal()
		return after.Cut+after.Refused > before.Cut+before.Refused, nil

	case FaultNone:
		in.event("no fault")
		time.Sleep(in.timing.Election * 3 / 2)
		return true, nil

	case FaultMemberReplace:
		return in.replaceMember(false)

	case FaultRemoveLeader:
		return in.replaceMember(true)

	case FaultGrowShrink:
		return in.growShrink()

	case FaultPartitionOneWay:
		return in.oneWay()

	case FaultDrop:
		return in.dropChunks()

	case FaultKillAll:
		return in.killAll()

	case FaultBlackholeSnapshot:
		return in.blackholeSnapshot()

	case FaultSoak:
		return in.soak()

	case FaultSnapshotRestore:
		return in.snapshotRestore()

	case FaultDelay:
		target := c.members[in.rnd.IntN(len(c.members))].Name
		d := time.Duration(50+in.rnd.IntN(250)) * time.Millisecond
		in.event("delay %s's peer traffic by %v ± %v", target, d, d/2)
		c.net.Delay(target, d, d/2)
		time.Sleep(2 * in.timing.hold(in.rnd))
		in.event("heal")
		c.net.Heal()
		return true, nil
	}
	if isProductFault(kind) {
		return in.productFault(kind)
	}
	return false, fmt.Errorf("unknown fault %q", kind)
}

// pickTarget returns the leader, or a random follower (the leader of a
// single-member cluster).
func (in *injector) pickTarget(leader bool) (string, error) {
	lead, err := in.c.leader(10 * time.Second)
	if err != nil {
		return "", err
	}
	if leader {
		return lead, nil
	}
	others := in.c.others(lead)
	if len(others) == 0 {
		return lead, nil // a single member: it is the only target
	}
	return others[in.rnd.IntN(len(others))], nil
}

// retry calls f with a 5 s context until it succeeds or timeout passes.
func retry(timeout time.Duration, f func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := f(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
