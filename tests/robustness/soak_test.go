package robustness

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// Soak mode: overlapping faults. FaultSoak injects several waves back to
// back, without waiting for the cluster to recover between them; each wave
// runs two faults at once, the second starting while the first holds. The
// campaign runs it (CAIRN_ROBUSTNESS=long); the short mode does not.
const FaultSoak = "soak"

// soakProcess are the first fault of a wave (a process fault), soakOther
// the second (a network fault, or a membership change during which the
// first fault's member is killed).
var (
	soakProcess = []string{FaultKillLeader, FaultKillFollower, FaultPauseMember, FaultPauseLeader}
	soakOther   = []string{FaultPartitionMinority, FaultPartitionLeader, FaultBlackhole, FaultDelay,
		FaultDrop, FaultPartitionOneWay, FaultMemberReplace}
)

// soakWave is one wave: two faults and the delay of the second.
type soakWave struct {
	First, Second string
	Lag           time.Duration
}

// soakPlan draws 3 or 4 waves from rnd. A membership change is always
// paired with a kill of the leader picked before it starts, so the two
// never target the same member (the replaced member is a follower).
func soakPlan(rnd *rand.Rand) []soakWave {
	var plan []soakWave
	for range 3 + rnd.IntN(2) {
		w := soakWave{First: soakProcess[rnd.IntN(len(soakProcess))], Second: soakOther[rnd.IntN(len(soakOther))],
			Lag: time.Duration(300+rnd.IntN(900)) * time.Millisecond}
		if w.Second == FaultMemberReplace {
			w.First = FaultKillLeader
		}
		plan = append(plan, w)
	}
	return plan
}

// soak runs the waves. Each fault runs in a sub-injector with its own
// random stream and timeline, merged into in's afterwards. Confirmed when
// every fault was.
func (in *injector) soak() (bool, error) {
	if len(in.c.members) < 3 {
		return false, fmt.Errorf("soak needs 3 members at least")
	}
	plan := soakPlan(in.rnd)
	confirmed := true
	var errs []error
	for i, w := range plan {
		in.event("soak wave %d/%d: %s, then %s %v later", i+1, len(plan), w.First, w.Second, w.Lag)
		subs := []*injector{in.sub(), in.sub()}
		results := make([]bool, 2)
		werrs := make([]error, 2)
		var wg sync.WaitGroup
		if w.Second == FaultMemberReplace {
			// Kill during a membership change: the leader is picked now,
			// killed while the member is being replaced.
			lead, err := in.c.leader(10 * time.Second)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				results[1], werrs[1] = subs[1].replaceMember(false)
			}()
			go func() {
				defer wg.Done()
				time.Sleep(w.Lag)
				results[0], werrs[0] = subs[0].killMember(lead)
			}()
		} else {
			wg.Add(2)
			go func() {
				defer wg.Done()
				results[0], werrs[0] = subs[0].inject(w.First)
			}()
			go func() {
				defer wg.Done()
				time.Sleep(w.Lag)
				results[1], werrs[1] = subs[1].inject(w.Second)
			}()
		}
		wg.Wait()
		for j, s := range subs {
			in.events = append(in.events, s.events...)
			confirmed = confirmed && results[j]
			if werrs[j] != nil {
				errs = append(errs, fmt.Errorf("wave %d: %w", i+1, werrs[j]))
			}
		}
	}
	return confirmed, errors.Join(errs...)
}

// sub is an injector on the same cluster and clock with a random stream
// and a timeline of its own (faults running at once must not share them).
func (in *injector) sub() *injector {
	return &injector{c: in.c, rec: in.rec, rnd: rand.New(rand.NewPCG(in.rnd.Uint64(), in.rnd.Uint64())), timing: in.timing}
}

// killMember SIGKILLs the named member, holds, and restarts it.
func (in *injector) killMember(target string) (bool, error) {
	c := in.c
	m := c.member(target)
	in.event("SIGKILL %s (soak: during a membership change)", target)
	c.setState(target, killed)
	m.Kill()
	confirmed := false
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
}

// campaignExtras are the campaign's runs beyond every fault on 3 cairn
// members and the rotating etcd, mixed, 1- and 5-member ones: a soak run
// on 3 cairn members and one on 5 cairn, 3 etcd or 3 mixed members (by
// round), the v2 register workload on 3 and 1 cairn members, and etcd
// 3.6.16 on 1 and 5 members and a 5-member mixed cluster, their faults
// rotating with the round.
func campaignExtras(round int) []scenario {
	n, one := len(allFaults), faultsFor(1)
	// The v2 runs leave snapshot-restore out: its check reads the v3
	// history.
	v2faults1 := []string{FaultKillLeader, FaultPauseMember, FaultPauseLeader, FaultKillAll}
	v2faults := slices.DeleteFunc(slices.Clone(allFaults), func(f string) bool { return f == FaultSnapshotRestore })
	soakOn := []scenario{{TargetCairn, 5, FaultSoak, 0}, {TargetEtcd, 3, FaultSoak, 0}, {TargetMixed, 3, FaultSoak, 0}}[round%3]
	return []scenario{
		{TargetCairn, 3, FaultSoak, 0},
		soakOn,
		{TargetCairnV2, 3, v2faults[(round+7)%len(v2faults)], 0},
		{TargetCairnV2, 1, v2faults1[(round+1)%len(v2faults1)], 0},
		{TargetEtcd, 1, one[(round+2)%len(one)], 0},
		{TargetEtcd, 5, allFaults[(round+9)%n], 0},
		{TargetMixed, 5, allFaults[(round+11)%n], 0},
	}
}

// extrasReport is the campaign report's lines for the v2 workload, the
// snapshot restores and the soak runs ("" when there were none).
func extrasReport(results []*runResult) string {
	var b strings.Builder
	var v2runs, v2events, v2polls, restores, restored, revs, soaks int
	waves := map[string]int{}
	for _, r := range results {
		if r.V2 != nil {
			v2runs++
			v2events += r.V2.Events
			v2polls += r.V2.Polls
		}
		if r.Scenario.Fault == FaultSoak {
			soaks++
			for _, e := range r.Events {
				// "soak wave i/n: first, then second <lag> later"
				if _, rest, ok := strings.Cut(e.What, "soak wave "); ok {
					if _, pair, ok := strings.Cut(rest, ": "); ok {
						first, second, _ := strings.Cut(pair, ", then ")
						second, _, _ = strings.Cut(second, " ")
						waves[first+" + "+second]++
					}
				}
			}
		}
		for _, rc := range r.restores {
			restores++
			for _, m := range rc.Members {
				restored++
				revs += len(m.States)
			}
		}
	}
	if v2runs > 0 {
		fmt.Fprintf(&b, "- v2 register workload: %d runs, %d v2 events in their histories, %d waitIndex watch answers checked\n", v2runs, v2events, v2polls)
	}
	if restores > 0 {
		fmt.Fprintf(&b, "- snapshot restores: %d snapshots restored into %d members, %d restored key spaces (one per revision) compared with the history\n", restores, restored, revs)
	}
	if soaks > 0 {
		n := 0
		for _, c := range waves {
			n += c
		}
		fmt.Fprintf(&b, "- soak runs (overlapping faults): %d, %d waves:", soaks, n)
		for _, k := range sortedKeys(waves) {
			fmt.Fprintf(&b, " %s ×%d;", k, waves[k])
		}
		b.WriteString("\n")
	}
	return b.String()
}
