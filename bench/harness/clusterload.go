package harness

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The multi-member workloads run on a fresh 3-member cluster (cluster.go)
// per run. A system that refuses to bootstrap one (cairn today) is "not
// supported" for them.

// put3mWorkload: etcd's benchmark put against all three members' endpoints
// (its connections are spread over them round-robin, as in etcd's
// performance docs' "all members" figures); followers forward to the leader.
func put3mWorkload(name string, clients, conns, total int) workload {
	return workload{
		name: name, server: true, members: clusterSize, metrics: loadMetrics,
		desc: fmt.Sprintf("put on a 3-member cluster, %d clients / %d connections spread over all 3 endpoints, "+
			"8 B keys (100k key space), 256 B values; server CPU is the sum over members", clients, conns),
		clusterRun: func(ctx context.Context, r *runner, c *cluster) (runOut, error) {
			cpu0, cerr := c.cpu()
			m, err := r.benchmarkAt(ctx, strings.Join(c.endpoints, ","), clients, conns,
				"put", "--key-size", "8", "--val-size", strconv.Itoa(valSize), "--key-space-size", "100000",
				"--total", strconv.Itoa(total))
			if err != nil {
				return runOut{m: m, expected: total}, err
			}
			v := loadValues(*m)
			if cpu1, err := c.cpu(); err == nil && cerr == nil {
				v["cpu_us"] = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(total)
			}
			return runOut{m: m, values: v, expected: total}, nil
		},
	}
}

// range3mWorkload: etcd's benchmark linearizable 1-key range against all
// three members' endpoints (connections spread round-robin): each member
// serves reads with a ReadIndex round through the leader.
func range3mWorkload(name string, clients, conns, total int) workload {
	return workload{
		name: name, server: true, members: clusterSize, metrics: loadMetrics,
		desc: fmt.Sprintf("range 1 key, linearizable, on a 3-member cluster, %d clients / %d connections spread over "+
			"all 3 endpoints; server CPU is the sum over members", clients, conns),
		clusterRun: func(ctx context.Context, r *runner, c *cluster) (runOut, error) {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := c.cli.Put(pctx, rangeKey, strings.Repeat("r", valSize))
			cancel()
			if err != nil {
				return runOut{}, fmt.Errorf("preload %s: %w", rangeKey, err)
			}
			cpu0, cerr := c.cpu()
			m, err := r.benchmarkAt(ctx, strings.Join(c.endpoints, ","), clients, conns,
				"range", rangeKey, "--consistency", "l", "--total", strconv.Itoa(total))
			if err != nil {
				return runOut{m: m, expected: total}, err
			}
			v := loadValues(*m)
			if cpu1, err := c.cpu(); err == nil && cerr == nil {
				v["cpu_us"] = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(total)
			}
			return runOut{m: m, values: v, expected: total}, nil
		},
	}
}

// leaderRecoveryLimit bounds the wait for a write after the leader kill.
const (
	leaderRecoveryLimit = time.Minute
	probeEvery          = 10 * time.Millisecond
)

// leaderKillWorkload: the paced put load of maint.go (each client connected
// to all three members), then SIGKILL of the member that says it is the
// leader. Nothing is restarted; the run ends after the tail.
//
// Recovery is measured by a probe, not by the paced clients (a client whose
// put was forwarded to the dead leader waits for the server's request
// timeout, 7 s by default, and sends nothing meanwhile): from the kill on,
// a put every 10 ms, each in its own goroutine through a client connected
// to all three members, until one succeeds; recovery = kill → completion of
// the first successful probe. Put latency across the kill is over the paced
// puts whose lifetime overlaps kill → recovery, failed ones included (the
// time to their error is a stall the client sees). Puts and probes failing
// across the kill are what is measured: counted, shown and reported, they
// do not fail the run; a put that failed before the kill, no successful
// probe within a minute, or another member dying does.
func leaderKillWorkload(sz Sizes) workload {
	return workload{
		name: "leader-kill", server: true, members: clusterSize,
		desc: fmt.Sprintf("3-member cluster under %d clients putting %d/s (64 B keys, 256 B values; each client connected "+
			"to all 3 members); SIGKILL of the leader, nothing restarted; recovery = kill → first successful write of a "+
			"probe putting every %s from the kill; latency across the kill = paced puts overlapping kill → recovery, "+
			"failed ones included (p99 as pkg/report, the max below 100 puts); failed puts are measured, not a run failure",
			maintClients, maintRate, probeEvery),
		metrics: []metricDef{
			{"recovery_ms", "kill → first successful write", "ms", false},
			{"during_p99_ms", "put p99 across the kill (failed included)", "ms", false},
			{"during_max_ms", "put max latency across the kill (failed included)", "ms", false},
			{"outside_p99_ms", "put p99 before the kill and after recovery", "ms", false},
			{"failed_puts", "paced puts failed across the kill", "puts", false},
			{"rps", "put rate achieved (target " + strconv.Itoa(maintRate) + ")", "puts/s", true},
		},
		clusterRun: func(ctx context.Context, r *runner, c *cluster) (runOut, error) {
			var killAt, recovered time.Time
			var probe *writeProbe
			u, err := runUnderLoad(ctx, c.endpoints, sz.MaintWarmup, sz.MaintTail,
				func(ctx context.Context, _ *pacedRun) (time.Time, error) {
					i, err := c.leader(ctx)
					if err != nil {
						return time.Time{}, err
					}
					r.logf("leader-kill: SIGKILL leader %s", c.members[i].endpoint)
					killAt = time.Now()
					c.kill(i)
					probe = startWriteProbe(ctx, c.cli, killAt)
					recovered, err = probe.wait(ctx, leaderRecoveryLimit)
					return killAt, err
				})
			out := runOut{m: &u.m, expected: u.issued, errorsMeasured: true}
			if probe != nil {
				pm, issued := probe.finish()
				out.parts = []PartResult{{Name: "write probes", Expected: issued, Measurement: &pm, ErrorsMeasured: true}}
			}
			if err != nil {
				return out, err
			}
			v, err := leaderKillValues(u, killAt, recovered)
			out.values = v
			return out, err
		},
	}
}

func leaderKillValues(u underLoad, killAt, recovered time.Time) (map[string]float64, error) {
	if u.opErr != nil {
		return nil, fmt.Errorf("leader kill: %w", u.opErr)
	}
	failed := 0
	var during, outside []float64
	for _, s := range u.samples {
		end := s.start.Add(s.lat)
		if s.err != "" {
			if end.Before(killAt) {
				return nil, fmt.Errorf("a put failed before the kill: %s", s.err)
			}
			failed++
		}
		switch {
		case s.start.Before(recovered) && end.After(killAt):
			during = append(during, s.lat.Seconds())
		case s.err == "":
			outside = append(outside, s.lat.Seconds())
		}
	}
	if len(during) == 0 || len(outside) == 0 {
		return nil, fmt.Errorf("%d puts across the kill, %d outside: need both", len(during), len(outside))
	}
	during, outside = sortedCopy(during), sortedCopy(outside)
	return map[string]float64{
		"recovery_ms":    float64(recovered.Sub(killAt)) / float64(time.Millisecond),
		"during_p99_ms":  pctl(during, 99) * 1000,
		"during_max_ms":  during[len(during)-1] * 1000,
		"outside_p99_ms": pctl(outside, 99) * 1000,
		"failed_puts":    float64(failed),
		"rps":            u.m.RPS,
	}, nil
}

// writeProbe puts one key every probeEvery from its start, each put in its
// own goroutine (open loop: a put stuck on a dead leader does not delay the
// next), until one succeeds.
type writeProbe struct {
	from    time.Time
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	first   time.Time // completion of the first successful put
	ok      chan struct{}
	lats    []float64
	errs    map[string]int
	issued  int
	stopped chan struct{}
}

func startWriteProbe(ctx context.Context, cli *clientv3.Client, from time.Time) *writeProbe {
	pctx, cancel := context.WithTimeout(ctx, leaderRecoveryLimit)
	p := &writeProbe{from: from, cancel: cancel, ok: make(chan struct{}), errs: map[string]int{},
		stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		tick := time.NewTicker(probeEvery)
		defer tick.Stop()
		for {
			p.mu.Lock()
			p.issued++
			p.mu.Unlock()
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				t := time.Now()
				_, err := cli.Put(pctx, "/cairnbench/probe", "x")
				end := time.Now()
				p.mu.Lock()
				defer p.mu.Unlock()
				if err != nil {
					p.errs[err.Error()]++
					return
				}
				p.lats = append(p.lats, end.Sub(t).Seconds())
				if p.first.IsZero() || end.Before(p.first) {
					if p.first.IsZero() {
						close(p.ok)
					}
					p.first = end
				}
			}()
			select {
			case <-p.ok:
				return
			case <-pctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// wait returns the completion time of the first successful probe.
func (p *writeProbe) wait(ctx context.Context, limit time.Duration) (time.Time, error) {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-p.ok:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.first, nil
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	case <-t.C:
		return time.Time{}, fmt.Errorf("no write succeeded within %s of the kill", limit)
	}
}

// finish waits for the probes in flight (a probe stuck on the dead leader
// ends with the server's request timeout) and summarises them.
func (p *writeProbe) finish() (Measurement, int) {
	<-p.stopped
	p.wg.Wait()
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	return summarize(p.lats, p.errs, time.Since(p.from)), p.issued
}
