//go:build cairn_failpoints

package failpoint

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Enabled says whether this binary was built with the cairn_failpoints tag.
const Enabled = true

var (
	active              = parse(os.Getenv(EnvVar))
	crashPoint, crashAt = parseCrash(os.Getenv(CrashEnvVar))
	disk                = strings.TrimSpace(os.Getenv(DiskEnvVar))
	armed               atomic.Bool
	crashHits           atomic.Int64
	armOnce             sync.Once
)

func init() {
	if os.Getenv(ArmEnvVar) != "signal" {
		armed.Store(true)
		return
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1)
	go func() {
		<-c
		armOnce.Do(func() {
			fmt.Fprintf(os.Stderr, "cairn failpoint: armed by SIGUSR1 (crash point %q, disk fault %q)\n", crashPoint, disk)
			armed.Store(true)
		})
	}()
}

func parse(s string) map[string]bool {
	if s == "" {
		return nil
	}
	m := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		if name = strings.TrimSpace(name); name != "" {
			m[name] = true
		}
	}
	return m
}

// parseCrash splits "point[:n]"; n defaults to 1.
func parseCrash(s string) (string, int64) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", 0
	}
	point, count, ok := strings.Cut(s, ":")
	n := int64(1)
	if ok {
		if v, err := strconv.ParseInt(count, 10, 64); err == nil && v > 0 {
			n = v
		}
	}
	return point, n
}

// On says whether seeded bug name is switched on.
func On(name string) bool { return active[name] }

// Armed says whether the crash point and the armed disk faults are live.
func Armed() bool { return armed.Load() }

// Disk is the disk fault mode of CAIRN_TEST_DISK ("" for none).
func Disk() string { return disk }

// Crash is a crash point: when point is the armed one and this is its n-th
// hit since arming, the process writes one line to stderr and kills itself
// with SIGKILL: no deferred function, no flush, no graceful stop.
func Crash(point string) {
	if point != crashPoint || !armed.Load() {
		return
	}
	if hit := crashHits.Add(1); hit == crashAt {
		fmt.Fprintf(os.Stderr, "cairn failpoint: crash point %q reached (hit %d): killing the process\n", point, hit)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
