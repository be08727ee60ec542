package robustness

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/failpoint"
)

// shortScenarios is the fixed set the default `go test ./...` runs: a
// selection of the fault kinds on 3 cairn members (the campaign runs them
// all; the kinds left out here are close to one that is in: kill-follower
// to kill-leader, pause-member to pause-leader, partition-minority and
// blackhole to partition-leader and blackhole-snapshot, delay and drop
// to partition-oneway,
// member-replace to remove-leader), and one run each on etcd 3.6.16 and on
// a mixed cluster. The seeds fix the members' flags (snapshot count and
// catch-up entries among them), the fault's target and timing, and the
// traffic.
var shortScenarios = []scenario{
	{TargetCairn, 3, FaultKillLeader, 1},
	{TargetCairn, 3, FaultPauseLeader, 4},
	{TargetCairn, 3, FaultPartitionLeader, 6},
	{TargetCairn, 3, FaultPartitionOneWay, 31},
	{TargetCairn, 3, FaultBlackholeSnapshot, 34},
	{TargetCairn, 3, FaultKillAll, 33},
	{TargetCairn, 3, FaultRemoveLeader, 22},
	{TargetCairn, 3, FaultGrowShrink, 21},
	{TargetEtcd, 3, FaultPartitionLeader, 9},
	{TargetMixed, 3, FaultKillLeader, 10},
	{TargetCairnV2, 3, FaultPartitionLeader, 1}, // the v2 register workload (v2run_test.go)
	{TargetCairn, 3, FaultSnapshotRestore, 15},  // restored into 3 new members (snapshot_restore_test.go)
	// Inside cairn (faults_crash_test.go; the campaign runs every crash
	// point and disk fault).
	{TargetCairn, 3, faultCrashPrefix + failpoint.WALBeforeFsync, 1},
	{TargetCairn, 3, FaultDiskFsyncError, 2},
	// The seed picks the lease-heavy profile (with compaction).
	{TargetCairn, 3, FaultPauseLeader, 17},
}

// TestRobustness runs the short mode. CAIRN_ROBUSTNESS=long runs the
// campaign instead (TestRobustnessCampaign); CAIRN_ROBUSTNESS=off skips
// both.
func TestRobustness(t *testing.T) {
	if mode := os.Getenv("CAIRN_ROBUSTNESS"); mode == "off" || mode == "long" {
		t.Skipf("CAIRN_ROBUSTNESS=%s", mode)
	}
	if testing.Short() {
		t.Skip("-short")
	}
	camp := &campaign{start: time.Now(), firstSeed: shortScenarios[0].Seed}
	defer func() {
		camp.end = time.Now()
		t.Log(camp.report())
	}()
	for _, sc := range shortScenarios {
		t.Run(sc.String(), func(t *testing.T) {
			// A run under the load floor does not count: its checks found
			// nothing, but too little traffic reached the fault for them
			// to mean much, which on a busy 2-core machine says more about
			// the machine than about the store. It is run once more (each
			// attempt a subtest of its own, so the first one's members are
			// stopped first); a second miss fails.
			for attempt := 1; attempt <= 2; attempt++ {
				var res *runResult
				t.Run(fmt.Sprintf("attempt-%d", attempt), func(t *testing.T) {
					res = runScenario(t, sc, shortConfig)
					camp.add(res)
					if res.onlyLowLoad() && attempt == 1 {
						t.Logf("under the load floor, to be run again: %s", res.summary())
						return
					}
					if res.failed() {
						t.Error(res.summary())
						return
					}
					t.Log(res.summary())
					if testing.Verbose() {
						t.Log(res.timeline())
					}
				})
				if res == nil || !res.onlyLowLoad() {
					return
				}
			}
		})
	}
}
