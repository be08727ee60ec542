package robustness

import (
	"os"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/failpoint"
)

// seededBugs are the product's test-only hooks (internal/failpoint) and
// the anomaly the suite must report when one is on.
// Most need no fault and run on one member; a hook whose bug shows only
// under a fault names its scenario.
type seededBug struct {
	hook string
	want string
	sc   scenario // zero: one cairn member, no fault, seed 100 + index
	// compact: the run compacts as it goes (the hook is in compaction).
	compact bool
	env     []string // more environment for the members (a disk fault)
	// weights, when set, replace seededConfig's traffic weights (a hook
	// only some operation shows).
	weights map[OpKind]int
}

var seededBugs = []seededBug{
	{hook: failpoint.WatchDropEvent, want: anomWatchGap},
	{hook: failpoint.LeaseExpireEarly, want: anomLeaseEarly},
	{hook: failpoint.PutAckUnwritten, want: anomLostWrite},
	{hook: failpoint.LeaseRevokeLeavesKey, want: anomLeaseLeftKey},
	// A follower cut off serves its clients' reads from its stale state.
	{hook: failpoint.ReadLocal, want: anomNotLinearizable, sc: scenario{TargetCairn, 3, FaultPartitionMinority, 105}},
	// The compactor's watch from each compact revision misses the delete
	// there.
	{hook: failpoint.CompactDropsTombstone, want: anomWatchCompactEdge, compact: true},
	// Stale gets answered from the current state.
	{hook: failpoint.RangeIgnoresRev, want: anomStaleGet, weights: map[OpKind]int{OpGet: 20, OpStaleGet: 15, OpSerialGet: 5,
		OpPut: 30, OpDelete: 5, OpCAS: 10, opPutLease: 10, OpLeaseGrant: 5}},
	// Durability bugs (faults_crash_test.go): each needs a crash at the
	// right place.
	seededAckBeforeFsync, seededCISavedApart,
}

// seededAttempts is how many runs a seeded bug gets to show.
const seededAttempts = 2

// seededConfig is a short run on one member with no fault: the hooks need
// none, and every lease is kept alive with the shortest TTL cairn grants
// (2 s, renewed every 0.5 s), so the lease hook shows within the run.
var seededConfig = func() runConfig {
	c := shortConfig
	// Long enough for a 2 s lease to end inside the checked history even
	// on a loaded machine (with short mode's 1.5 s the hook's early ends
	// often fell after the traffic, where nothing is checked).
	c.Warmup = 4 * time.Second
	c.FixedTraffic = true
	c.Traffic.KeptTTL = 2
	c.Traffic.KeptPercent = 100
	c.Traffic.KeepAlive = 500 * time.Millisecond
	c.Traffic.Weights = map[OpKind]int{OpGet: 30, OpPut: 30, OpDelete: 5, OpCAS: 10,
		opPutLease: 15, OpLeaseGrant: 8, OpLeaseRevoke: 5}
	return c
}()

// TestSeededBugs switches each hook on in a one-member cairn cluster and
// checks that the suite reports the anomaly the hook's bug shape must
// produce: the checkers catch a watch that drops events, a lease that
// expires although kept alive, and an acknowledged put that was never
// written.
func TestSeededBugs(t *testing.T) {
	if mode := os.Getenv("CAIRN_ROBUSTNESS"); mode == "off" || mode == "long" {
		t.Skipf("CAIRN_ROBUSTNESS=%s", mode)
	}
	if testing.Short() {
		t.Skip("-short")
	}
	for i, sb := range seededBugs {
		t.Run(sb.hook, func(t *testing.T) {
			cfg := seededConfig
			cfg.Env = append([]string{failpoint.EnvVar + "=" + sb.hook}, sb.env...)
			if sb.weights != nil {
				cfg.Traffic.Weights = sb.weights
			}
			if sb.compact {
				cfg.Traffic.CompactEvery = 500 * time.Millisecond
				cfg.Traffic.CompactAtDeletes = true
			}
			sc := sb.sc
			if sc.Target == "" {
				sc = scenario{TargetCairn, 1, FaultNone, uint64(100 + i)}
			}
			// A bug shows only when the traffic meets its window (the
			// durability bugs lose only the writes answered in the last
			// moments before the crash), so a miss gets one more run with
			// another seed; a bug the checkers cannot see misses both.
			var kinds map[string]int
			for attempt := 1; attempt <= seededAttempts; attempt++ {
				res := runScenario(t, sc, cfg)
				t.Log(res.summary())
				if res.Err != nil {
					t.Fatal(res.Err)
				}
				kinds = map[string]int{}
				for _, a := range res.Anomalies {
					kinds[a.Kind]++
				}
				if kinds[sb.want] > 0 {
					t.Logf("caught in attempt %d: %v", attempt, kinds)
					return
				}
				t.Logf("attempt %d (seed %d): not caught, got %v", attempt, sc.Seed, kinds)
				sc.Seed += 1000
			}
			t.Fatalf("hook %s on: want a %q anomaly in one of %d runs, got %v", sb.hook, sb.want, seededAttempts, kinds)
		})
	}
}
