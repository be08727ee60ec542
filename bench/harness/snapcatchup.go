package harness

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// snapshot-catchup: a follower of a 3-member cluster is stopped, the other
// two grow the backend (SnapMiB of live key+value bytes, so the leader's raft
// log is compacted many times over), then the follower is started again and
// must be brought up by a snapshot of the whole backend. Meanwhile a paced
// put load and a paced linearizable read load run against the two other
// members: the requests overlapping the catch-up are the ones the snapshot's
// send (leader) and receive (follower, on the same disk here) could delay.
const (
	snapVal       = 1024 // value size of the fill, as defrag-under-load
	snapReadRate  = 500  // linearizable reads per second, all readers together
	snapReaders   = 10
	snapPollEvery = 20 * time.Millisecond
	// defaultSnapshotCount is --snapshot-count's default (etcd 3.6, cairn).
	defaultSnapshotCount = 10000
	// snapCatchupLimit bounds the wait for the restarted member to catch up.
	snapCatchupLimit = 5 * time.Minute
)

// snapshotLogLines are the log lines by which the restarted member shows it
// installed a snapshot from the leader (cairn and etcd 3.6 both log "applying
// snapshot" when they start installing one): a member that caught up from
// the log instead makes the run invalid, not fast.
var snapshotLogLines = []string{"applying snapshot"}

func snapshotCatchupWorkload(sz Sizes) workload {
	keys := max(1, sz.SnapMiB<<20/(64+snapVal))
	args := []string{"--quota-backend-bytes", bigQuota}
	if keys < 3*defaultSnapshotCount {
		// A fill this small leaves the log uncompacted at the defaults
		// (snapshot every 10,000 entries, 5,000 kept): compact more often
		// so the member still needs a snapshot (tiny mode only).
		args = append(args, "--snapshot-count", fmt.Sprint(max(100, keys/5)),
			"--snapshot-catchup-entries", fmt.Sprint(max(50, keys/10)))
	}
	return workload{
		name: "snapshot-catchup", server: true, members: clusterSize, serverArgs: args,
		desc: fmt.Sprintf("3-member cluster, one follower stopped, %d MiB of live data written (%d keys of 64 B, 1 KiB "+
			"values), then the follower restarted: it must receive the whole backend as a snapshot while %d clients put "+
			"%d/s and %d clients make %d linearizable reads/s on the two other members; latency of the requests that "+
			"overlapped restart → caught up (p99 as pkg/report, the max below 100), and the catch-up time; quota 8 GiB",
			sz.SnapMiB, keys, maintClients, maintRate, snapReaders, snapReadRate),
		metrics: []metricDef{
			{"catchup_s", "restart → restarted member applied the leader's index", "s", false},
			{"put_during_p99_ms", "put p99 during the catch-up", "ms", false},
			{"put_during_max_ms", "put max latency during the catch-up", "ms", false},
			{"put_outside_p99_ms", "put p99 outside the catch-up", "ms", false},
			{"read_during_p99_ms", "linearizable read p99 during the catch-up", "ms", false},
			{"read_during_max_ms", "linearizable read max latency during the catch-up", "ms", false},
			{"read_outside_p99_ms", "linearizable read p99 outside the catch-up", "ms", false},
			{"db_mib", "leader's backend size (Status.dbSize)", "MiB", false},
			{"rps", "put rate achieved (target " + fmt.Sprint(maintRate) + ")", "puts/s", true},
		},
		clusterRun: func(ctx context.Context, r *runner, c *cluster) (runOut, error) {
			return snapshotCatchupRun(ctx, r, c, sz, keys)
		},
	}
}

func snapshotCatchupRun(ctx context.Context, r *runner, c *cluster, sz Sizes, keys int) (runOut, error) {
	li, err := c.leader(ctx)
	if err != nil {
		return runOut{}, err
	}
	fi := (li + 1) % len(c.members) // a follower
	leader, follower := c.members[li], c.members[fi]
	var live []string
	for i, s := range c.members {
		if i != fi {
			live = append(live, s.endpoint)
		}
	}
	r.logf("snapshot-catchup: stopping follower %s", follower.endpoint)
	c.kill(fi)
	fill, err := r.fill(ctx, leader, keys, keys, snapVal)
	parts := []PartResult{fill}
	if err != nil {
		return runOut{parts: parts}, err
	}
	if err := preloadRangeKey(ctx, leader); err != nil {
		return runOut{parts: parts}, err
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	st, err := leader.cli.Status(sctx, leader.endpoint)
	cancel()
	if err != nil {
		return runOut{parts: parts}, fmt.Errorf("leader status after fill: %w", err)
	}
	logBefore, _ := os.ReadFile(follower.logPath)

	limit := int(maxDuration(ctx).Seconds()+1) * maintRate
	puts := pacedPuts{endpoints: live, rate: maintRate, clients: maintClients, keys: maintKeys, valSize: valSize,
		reqTimeout: maintReqTimeout, maxReqs: limit}
	reads := pacedPuts{endpoints: live, rate: snapReadRate, clients: snapReaders, reqTimeout: maintReqTimeout,
		maxReqs: limit, do: func(ctx context.Context, cli *clientv3.Client, _ int) error {
			resp, err := cli.Get(ctx, rangeKey)
			if err != nil {
				return err
			}
			if len(resp.Kvs) != 1 || len(resp.Kvs[0].Value) != valSize {
				return fmt.Errorf("read returned %d keys, want %s with a %d B value", len(resp.Kvs), rangeKey, valSize)
			}
			return nil
		}}
	pr, err := puts.start(ctx)
	if err != nil {
		return runOut{parts: parts}, err
	}
	rr, err := reads.start(ctx)
	if err != nil {
		pr.finish()
		return runOut{parts: parts}, err
	}
	slack := func(d time.Duration) time.Duration { return max(10*d, 30*time.Second) }
	warmN := max(1, int(sz.MaintWarmup.Seconds()*maintRate))
	tailN := max(1, int(sz.MaintTail.Seconds()*maintRate))
	var from, to time.Time
	opErr := pr.waitFor(ctx, warmN, slack(sz.MaintWarmup), "warm-up")
	if opErr == nil {
		from, to, opErr = catchUp(ctx, r, c, fi, leader)
	}
	var tailErr error
	if opErr == nil {
		tailErr = pr.waitFor(ctx, tailN, slack(sz.MaintTail), "tail")
	}
	putSamples, putElapsed, putIssued := pr.finish()
	readSamples, readElapsed, readIssued := rr.finish()

	pm, putDuring, putOutside := splitSamples(putSamples, putElapsed, from, to)
	rm, readDuring, readOutside := splitSamples(readSamples, readElapsed, from, to)
	if !from.IsZero() {
		r.logf("snapshot-catchup timeline (seconds from the restart):\n%s", catchupTimeline(from, to, c, li, fi,
			map[string][]putSample{"put": slowest(putSamples, 5), "read": slowest(readSamples, 3)}))
	}
	parts = append(parts, PartResult{Name: "linearizable reads", Expected: readIssued, Measurement: &rm})
	out := runOut{m: &pm, expected: putIssued, parts: parts}
	switch {
	case opErr != nil:
		return out, fmt.Errorf("catch-up: %w", opErr)
	case tailErr != nil:
		return out, tailErr
	}
	logAll, _ := os.ReadFile(follower.logPath)
	if !containsAny(string(logAll[min(len(logBefore), len(logAll)):]), snapshotLogLines) {
		return out, fmt.Errorf("the restarted member caught up without installing a snapshot (no %q in its log): "+
			"the workload measured a log catch-up", snapshotLogLines)
	}
	if len(putDuring) == 0 || len(putOutside) == 0 || len(readDuring) == 0 || len(readOutside) == 0 {
		return out, fmt.Errorf("puts %d during / %d outside, reads %d / %d: need all four",
			len(putDuring), len(putOutside), len(readDuring), len(readOutside))
	}
	out.values = map[string]float64{
		"catchup_s":           to.Sub(from).Seconds(),
		"put_during_p99_ms":   pctl(putDuring, 99) * 1000,
		"put_during_max_ms":   putDuring[len(putDuring)-1] * 1000,
		"put_outside_p99_ms":  pctl(putOutside, 99) * 1000,
		"read_during_p99_ms":  pctl(readDuring, 99) * 1000,
		"read_during_max_ms":  readDuring[len(readDuring)-1] * 1000,
		"read_outside_p99_ms": pctl(readOutside, 99) * 1000,
		"db_mib":              float64(st.DbSize) / (1 << 20),
		"rps":                 pm.RPS,
	}
	return out, nil
}

// catchUp restarts member fi and waits until it has applied the index the
// leader had reached at the restart. It returns the restart time and the
// time the member was seen caught up.
func catchUp(ctx context.Context, r *runner, c *cluster, fi int, leader *server) (time.Time, time.Time, error) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	st, err := leader.cli.Status(sctx, leader.endpoint)
	cancel()
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("leader status: %w", err)
	}
	target := st.RaftIndex
	s := c.members[fi]
	r.logf("snapshot-catchup: restarting %s, leader at index %d", s.endpoint, target)
	from := time.Now()
	if err := c.restart(fi); err != nil {
		return from, time.Time{}, err
	}
	deadline := time.Now().Add(snapCatchupLimit)
	tick := time.NewTicker(snapPollEvery)
	defer tick.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := s.cli.Status(sctx, s.endpoint)
		cancel()
		if err == nil && st.RaftAppliedIndex >= target {
			return from, time.Now(), nil
		}
		if !s.alive() {
			return from, time.Time{}, fmt.Errorf("restarted member exited (%v)\n%s", s.waitErr, s.logTail())
		}
		if time.Now().After(deadline) {
			return from, time.Time{}, fmt.Errorf("restarted member not caught up to index %d within %s (last: %v)",
				target, snapCatchupLimit, err)
		}
		select {
		case <-ctx.Done():
			return from, time.Time{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// splitSamples summarises every sample and returns the sorted latencies (s)
// of the successful ones that overlapped [from, to] and of the others.
func splitSamples(samples []putSample, elapsed time.Duration, from, to time.Time) (Measurement, []float64, []float64) {
	var lats, during, outside []float64
	errs := map[string]int{}
	for _, s := range samples {
		if s.err != "" {
			errs[s.err]++
			continue
		}
		lats = append(lats, s.lat.Seconds())
		if !from.IsZero() && s.start.Before(to) && s.start.Add(s.lat).After(from) {
			during = append(during, s.lat.Seconds())
		} else {
			outside = append(outside, s.lat.Seconds())
		}
	}
	return summarize(lats, errs, elapsed), sortedCopy(during), sortedCopy(outside)
}

// catchupPhases are the log lines (etcd 3.6 and cairn write the same) that
// mark the phases of a snapshot catch-up on the leader and the follower.
var catchupPhases = []string{"sending database snapshot", "sent database snapshot", "receiving database snapshot",
	"received and saved database snapshot", "applying snapshot", "kvstore restored", "applied snapshot"}

// catchupTimeline is the catch-up's phases from the leader's and the
// follower's logs, every member's warnings during it and the GC cycles
// (servers run with GODEBUG=gctrace=1) that overlapped a slow request, with
// the slowest requests of the run.
func catchupTimeline(from, to time.Time, c *cluster, li, fi int, slow map[string][]putSample) string {
	var all []putSample
	for _, ss := range slow {
		all = append(all, ss...)
	}
	var events []logEvent
	for i, s := range c.members {
		who := fmt.Sprintf("member %d", i)
		switch i {
		case li:
			who = "leader"
		case fi:
			who = "follower"
		}
		log, _ := os.ReadFile(s.logPath)
		if i == li || i == fi {
			events = append(events, logPhases(log, who, from, catchupPhases)...)
		}
		events = append(events, logWarnings(log, who, from, to, 10)...)
		events = append(events, gcOverlapping(gcCycles(log), who, all)...)
	}
	return formatTimeline(from, events, slow)
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
