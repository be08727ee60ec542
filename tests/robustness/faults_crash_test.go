package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairnkv/cairn/internal/failpoint"
	"github.com/cairnkv/cairn/tests/framework"
)

// Faults inside cairn itself, which exist only in its cairn_failpoints
// build (internal/failpoint): a crash at a named place on the write,
// snapshot, compaction or defrag path, and disk faults under the WAL. They
// run on cairn targets only.

// faultCrashPrefix names the crash-point kinds: "crash-" + the point.
const faultCrashPrefix = "crash-"

// The disk fault kinds.
const (
	// FaultDiskLoseUnsynced runs every member with the WAL's writes held
	// in memory until fsynced, and SIGKILLs the leader or (by seed) every
	// member: a power loss. Every acknowledged write must survive.
	FaultDiskLoseUnsynced = "disk-lose-unsynced"
	// FaultDiskFsyncError makes one member's WAL fsyncs fail with EIO
	// from a moment on: it must stop without acknowledging the writes of
	// the failed Ready, and start again cleanly.
	FaultDiskFsyncError = "disk-fsync-error"
	// FaultDiskFull makes one member's WAL writes fail with ENOSPC (half
	// written) from a moment on: the same.
	FaultDiskFull = "disk-full"
)

// crashPoints are the crash points a fault kind arms (the seeded bug
// ci-saved-apart's own point is not among them: only that bug hits it).
var crashPoints = []string{
	failpoint.WALBeforeFsync, failpoint.WALAfterFsync,
	failpoint.BackendBeforeCommit, failpoint.BackendAfterCommit,
	failpoint.SnapshotBeforeWALRecord, failpoint.SnapshotBeforeWALRelease,
	failpoint.CompactBetweenBatches, failpoint.DefragBeforeSwap,
}

// productFaults are the crash-point and disk kinds: the campaign runs each
// on 3 cairn members every round.
var productFaults = func() []string {
	var out []string
	for _, p := range crashPoints {
		out = append(out, faultCrashPrefix+p)
	}
	return append(out, FaultDiskLoseUnsynced, FaultDiskFsyncError, FaultDiskFull)
}()

// isProductFault says whether kind is a crash-point or disk kind
// (faultCrashCIApart included).
func isProductFault(kind string) bool {
	return strings.HasPrefix(kind, faultCrashPrefix) || slices.Contains(productFaults, kind)
}

// prepareProductFault adjusts a run for a product fault before its
// cluster starts: the members' environment (every member gets it; only the
// one the fault signals arms it), flags that make the crash point hit
// (frequent snapshots, small compaction batches) and traffic compaction.
// Its random choices use a stream of their own.
func prepareProductFault(sc scenario, flags []string, cfg runConfig) ([]string, runConfig) {
	if !isProductFault(sc.Fault) {
		return flags, cfg
	}
	rnd := rand.New(rand.NewPCG(sc.Seed, 0xc4a5))
	env := slices.Clone(cfg.Env)
	switch sc.Fault {
	case FaultDiskLoseUnsynced:
		env = append(env, failpoint.DiskEnvVar+"="+failpoint.DiskLoseUnsynced)
	case FaultDiskFsyncError:
		env = append(env, failpoint.DiskEnvVar+"="+failpoint.DiskFsyncError, failpoint.ArmEnvVar+"=signal")
	case FaultDiskFull:
		env = append(env, failpoint.DiskEnvVar+"="+failpoint.DiskFull, failpoint.ArmEnvVar+"=signal")
	default:
		point := strings.TrimPrefix(sc.Fault, faultCrashPrefix)
		n := 1
		switch point {
		case failpoint.WALBeforeFsync, failpoint.WALAfterFsync, failpoint.BackendBeforeCommit, failpoint.BackendAfterCommit:
			n = 1 + rnd.IntN(20) // hit many times a second
		case failpoint.SnapshotBeforeWALRecord, failpoint.SnapshotBeforeWALRelease:
			flags = snapshotFlags(flags)
		case failpoint.CompactBetweenBatches:
			flags = append(slices.Clone(flags), "--compaction-batch-limit", "20")
			cfg.Traffic.CompactEvery = 500 * time.Millisecond
		}
		env = append(env, fmt.Sprintf("%s=%s:%d", failpoint.CrashEnvVar, point, n), failpoint.ArmEnvVar+"=signal")
	}
	cfg.Env = env
	return flags, cfg
}

// productFault injects a crash-point or disk kind.
func (in *injector) productFault(kind string) (bool, error) {
	for _, m := range in.c.members {
		if !strings.Contains(filepath.Base(m.Bin), "cairn") {
			return false, fmt.Errorf("%s needs cairn members: %s runs %s", kind, m.Name, m.Bin)
		}
	}
	if kind == FaultDiskLoseUnsynced {
		return in.powerLoss()
	}
	target, err := in.pickTarget(in.rnd.IntN(2) == 0)
	if err != nil {
		return false, err
	}
	var want string // the member's log line that confirms the fault
	switch kind {
	case FaultDiskFsyncError:
		want = "input/output error"
	case FaultDiskFull:
		want = "no space left on device"
	default:
		want = fmt.Sprintf("crash point %q reached", strings.TrimPrefix(kind, faultCrashPrefix))
	}
	return in.armAndRestart(target, kind, want)
}

// armAndRestart arms the member's crash point or disk fault (SIGUSR1),
// waits for it to die (30 s at most; it is SIGKILLed then and the fault
// counts as not confirmed), and restarts it. A defrag crash point gets
// Defragment requests until the member dies. Confirmed when the member
// exited by itself and its log says why (want).
func (in *injector) armAndRestart(target, kind, want string) (bool, error) {
	c := in.c
	m := c.member(target)
	in.event("arm %s on %s (SIGUSR1)", kind, target)
	if err := m.Signal(syscall.SIGUSR1); err != nil {
		return false, err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if kind == faultCrashPrefix+failpoint.DefragBeforeSwap {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := c.client(m)
			defer cl.Close()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, _ = cl.Defragment(ctx, m.Client)
				cancel()
				select {
				case <-stop:
					return
				case <-m.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
	}
	died := false
	select {
	case <-m.Done():
		died = true
	case <-time.After(30 * time.Second):
	}
	close(stop)
	wg.Wait()
	c.setState(target, killed)
	confirmed := false
	if died {
		confirmed = strings.Contains(m.Log(), want)
		in.event("%s exited (%v); log names the fault: %t", target, m.ExitErr(), confirmed)
	} else {
		in.event("%s did not exit within 30 s: SIGKILL", target)
		m.Kill()
	}
	time.Sleep(in.timing.hold(in.rnd) / 2)
	in.event("restart %s", target)
	m.Start()
	c.setState(target, running)
	return confirmed, nil
}

// powerLoss SIGKILLs the leader or every member (by seed) while their
// WALs hold unsynced writes in memory only, and restarts them.
func (in *injector) powerLoss() (bool, error) {
	c := in.c
	var targets []*framework.Member
	if in.rnd.IntN(2) == 0 {
		lead, err := c.leader(10 * time.Second)
		if err != nil {
			return false, err
		}
		targets = []*framework.Member{c.member(lead)}
		in.event("power loss on %s (SIGKILL, unsynced WAL writes lost)", lead)
	} else {
		targets = c.members
		in.event("power loss on every member (SIGKILL, unsynced WAL writes lost)")
	}
	var wg sync.WaitGroup
	for _, m := range targets {
		c.setState(m.Name, killed)
		wg.Add(1)
		go func(m *framework.Member) {
			defer wg.Done()
			m.Kill()
		}(m)
	}
	wg.Wait()
	confirmed := true
	for _, m := range targets {
		select {
		case <-m.Done():
		default:
			confirmed = false
		}
	}
	time.Sleep(in.timing.hold(in.rnd) / 2)
	in.event("restart")
	for _, m := range targets {
		m.Start()
		c.setState(m.Name, running)
	}
	return confirmed, nil
}

// faultCrashCIApart crashes between the two commits of the seeded bug
// ci-saved-apart (its point is hit only with that bug on).
const faultCrashCIApart = faultCrashPrefix + failpoint.BackendBetweenCIAndData

// The durability seeded bugs, one member each:
//   - ack-before-fsync, with the WAL's unsynced writes held in memory and
//     the member SIGKILLed: the writes answered since the WAL's last
//     fsync (and the backend's last commit) are lost;
//   - ci-saved-apart, with a crash between the consistent index's commit
//     and the data's: the restart skips the entries the index claims.
var (
	seededAckBeforeFsync = seededBug{hook: failpoint.AckBeforeFsync, want: anomLostWrite,
		sc:  scenario{TargetCairn, 1, FaultKillLeader, 106},
		env: []string{failpoint.DiskEnvVar + "=" + failpoint.DiskLoseUnsynced}}
	seededCISavedApart = seededBug{hook: failpoint.CISavedApart, want: anomLostWrite, sc: scenario{TargetCairn, 1, faultCrashCIApart, 107}}
)
