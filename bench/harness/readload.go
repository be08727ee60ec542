package harness

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Reads under a put load: a few readers get one preloaded key while many
// put clients keep the server writing (and its backend committing and
// fsyncing). The readers' latency shows whether a read waits for the
// writes: for a raft round (linearizable), or for the backend's commit.
const (
	rupPutClients  = 100
	rupPutConns    = 10
	rupPutKeySpace = 100000 // 8 B keys, as put-100c
	rupReaders     = 10
	rupReaderConns = 10
	// rupWarmupPuts complete before the reads start, so that the reads
	// meet a running put load, not its start-up.
	rupWarmupPuts  = 1000
	rupReqTimeout  = 10 * time.Second
	rupWarmupLimit = 30 * time.Second
)

// rupKey is the key of put request i: 8 bytes, uniformly random in a key
// space of rupPutKeySpace (never rangeKey). Safe for concurrent use.
func rupKey(int) string { return fmt.Sprintf("k%07d", rand.IntN(rupPutKeySpace)) }

// rangeLoad gets key total times over clients readers (sharing conns
// connections round-robin), each sending its next Get when the previous one
// returns. Every answer must hold exactly key with a value of valSize
// bytes; any other answer is a failed read. Bounded by total and by ctx.
type rangeLoad struct {
	endpoint     string
	clients      int
	conns        int
	total        int
	key          string
	valSize      int
	serializable bool
	reqTimeout   time.Duration
}

type rangeResult struct {
	m          Measurement
	lats       []float64 // seconds, successful reads
	start, end time.Time // the window the reads ran in
}

func (l rangeLoad) run(ctx context.Context) (rangeResult, error) {
	conns, closeAll, err := dialConns(l.endpoint, l.conns)
	if err != nil {
		return rangeResult{}, err
	}
	defer closeAll()
	var opts []clientv3.OpOption
	if l.serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	var (
		next atomic.Int64
		lats latSink
		errs errTally
		wg   sync.WaitGroup
	)
	start := time.Now()
	for c := 0; c < l.clients; c++ {
		wg.Add(1)
		go func(cli *clientv3.Client) {
			defer wg.Done()
			local := make([]float64, 0, l.total/l.clients+1)
			defer func() { lats.add(local) }()
			for next.Add(1) <= int64(l.total) && ctx.Err() == nil {
				rctx, cancel := context.WithTimeout(ctx, l.reqTimeout)
				t := time.Now()
				resp, err := cli.Get(rctx, l.key, opts...)
				d := time.Since(t)
				cancel()
				switch {
				case err != nil:
					errs.add(err.Error())
				case len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != l.key || len(resp.Kvs[0].Value) != l.valSize:
					errs.add(fmt.Sprintf("read returned %d keys, want %s with a %d B value", len(resp.Kvs), l.key, l.valSize))
				default:
					local = append(local, d.Seconds())
				}
			}
		}(conns[c%len(conns)])
	}
	wg.Wait()
	res := rangeResult{start: start, end: time.Now()}
	res.lats = lats.v
	res.m = summarize(res.lats, errs.snapshot(), res.end.Sub(start))
	if ctx.Err() != nil && res.m.Succeeded+res.m.Errors < l.total {
		return res, fmt.Errorf("reads: %w after %d of %d", errTimeout, res.m.Succeeded+res.m.Errors, l.total)
	}
	return res, nil
}

// preloadRangeKey writes rangeKey with a valSize-byte value: the key the
// range workloads read.
func preloadRangeKey(ctx context.Context, s *server) error {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.cli.Put(pctx, rangeKey, strings.Repeat("r", valSize)); err != nil {
		return fmt.Errorf("preload %s: %w", rangeKey, err)
	}
	return nil
}

// rangeUnderPutWorkload is range-{l,s}-under-put-100c: rupReaders readers
// get rangeKey sz.RangeUnderPut times in all while rupPutClients clients
// put random 8 B keys with valSize values as fast as the server takes them.
// The reads are the measurement; the puts are the run's "puts" part (from
// their start, rupWarmupPuts before the reads, to the reads' end), and a
// failed put fails the run as a failed read does. Server CPU is counted
// over the reads' window and divided by the reads and puts completed in it.
func rangeUnderPutWorkload(sz Sizes, serializable bool) workload {
	name, what := "range-l-under-put-100c", "linearizable"
	if serializable {
		name, what = "range-s-under-put-100c", "serializable"
	}
	return workload{
		name: name, server: true,
		desc: fmt.Sprintf("range 1 key (8 B key, 256 B value), %s, %d reads by %d clients / %d connections, while "+
			"%d clients / %d connections put random 8 B keys (%d key space) with 256 B values unpaced "+
			"(from %d puts before the reads to their end); put throughput and p99 over the whole put load; "+
			"server CPU over the reads' window per read and put completed in it",
			what, sz.RangeUnderPut, rupReaders, rupReaderConns, rupPutClients, rupPutConns, rupPutKeySpace, rupWarmupPuts),
		metrics: []metricDef{
			{"rps", "read throughput", "req/s", true},
			{"avg_ms", "read mean latency", "ms", false},
			{"p99_ms", "read p99 latency", "ms", false},
			{"cpu_us", "server CPU per request (reads + puts)", "µs", false},
			{"put_rps", "put throughput", "req/s", true},
			{"put_p99_ms", "put p99 latency", "ms", false},
		},
		run: func(ctx context.Context, r *runner, s *server) (runOut, error) {
			if err := preloadRangeKey(ctx, s); err != nil {
				return runOut{}, err
			}
			rl := rangeLoad{endpoint: s.endpoint, clients: rupReaders, conns: rupReaderConns, total: sz.RangeUnderPut,
				key: rangeKey, valSize: valSize, serializable: serializable, reqTimeout: rupReqTimeout}
			return readsUnderPuts(ctx, s, rl)
		},
	}
}

// readsUnderPuts starts the put load, waits for rupWarmupPuts of it, runs
// rl, stops the puts and reports both.
func readsUnderPuts(ctx context.Context, s *server, rl rangeLoad) (runOut, error) {
	pl := pacedPuts{endpoints: []string{s.endpoint}, clients: rupPutClients, conns: rupPutConns, valSize: valSize,
		reqTimeout: rupReqTimeout, maxReqs: math.MaxInt32, key: rupKey}
	p, err := pl.start(ctx)
	if err != nil {
		return runOut{}, err
	}
	werr := p.waitFor(ctx, rupWarmupPuts, rupWarmupLimit, "warm-up")
	var (
		res   rangeResult
		rerr  error
		cpu   time.Duration // the server's CPU time while the reads ran
		cpuOK bool
	)
	if werr == nil {
		cpu0, cerr0 := procCPU(s.pid())
		res, rerr = rl.run(ctx)
		cpu1, cerr1 := procCPU(s.pid())
		cpu, cpuOK = cpu1-cpu0, cerr0 == nil && cerr1 == nil
	}
	samples, elapsed, issued := p.finish()

	var putLats []float64
	putErrs := map[string]int{}
	inWindow := 0 // puts completed while the reads ran
	for _, ps := range samples {
		if ps.err != "" {
			putErrs[ps.err]++
			continue
		}
		putLats = append(putLats, ps.lat.Seconds())
		if end := ps.start.Add(ps.lat); !end.Before(res.start) && !end.After(res.end) {
			inWindow++
		}
	}
	puts := summarize(putLats, putErrs, elapsed)
	out := runOut{m: &res.m, expected: rl.total,
		parts: []PartResult{{Name: "puts", Expected: issued, Measurement: &puts}}}
	switch {
	case werr != nil:
		return out, werr
	case rerr != nil:
		return out, rerr
	case len(res.lats) == 0 || len(putLats) == 0:
		return out, nil // the failed requests fail the run
	}
	out.values = loadValues(res.m)
	out.values["put_rps"] = puts.RPS
	out.values["put_p99_ms"] = pctl(sortedCopy(putLats), 99) * 1000
	if cpuOK {
		out.values["cpu_us"] = float64(cpu) / float64(time.Microsecond) / float64(len(res.lats)+inWindow)
	}
	return out, nil
}
