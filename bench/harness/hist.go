package harness

import (
	"math"
	"strconv"
	"sync/atomic"
	"time"
)

// latHist is a concurrent latency histogram for streams too large to keep
// every sample (10,000 watchers × 10,000 events): logarithmic buckets 1%
// wide from 1 µs to about 6 hours. A percentile is the upper bound of the
// bucket holding pkg/report's sample (the first with at least p% of the
// samples before it), capped at the exact maximum: at most 1% above it.
type latHist struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sumNs  atomic.Int64
	maxNs  atomic.Int64
}

const (
	// 1.01^2400 µs ≈ 6.5 h. (It was 1,600 buckets, believed to reach 2.5 h
	// but reaching 8.2 s: every longer latency fell in the last bucket, so
	// full-size watch-fanout percentiles read 8,126 ms whatever they were.)
	histBuckets = 2400
	histGrowth  = 1.01
)

var histLogGrowth = math.Log(histGrowth)

func histBucket(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	b := int(math.Log(us)/histLogGrowth) + 1
	return min(b, histBuckets-1)
}

// histUpper is the upper bound of bucket b.
func histUpper(b int) time.Duration {
	return time.Duration(math.Pow(histGrowth, float64(b)) * float64(time.Microsecond))
}

func (h *latHist) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[histBucket(d)].Add(1)
	h.n.Add(1)
	h.sumNs.Add(int64(d))
	for {
		m := h.maxNs.Load()
		if int64(d) <= m || h.maxNs.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// merge adds o's counts to h (o must no longer change).
func (h *latHist) merge(o *latHist) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sumNs.Add(o.sumNs.Load())
	if m := o.maxNs.Load(); m > h.maxNs.Load() {
		h.maxNs.Store(m)
	}
}

// pctl returns the p-th percentile (see latHist).
func (h *latHist) pctl(p float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	// pkg/report's sample: the first index i with i*100/n >= p.
	idx := uint64(math.Ceil(p * float64(n) / 100))
	if idx >= n {
		idx = n - 1
	}
	var cum uint64
	for b := range h.counts {
		cum += h.counts[b].Load()
		if cum > idx {
			return min(histUpper(b), time.Duration(h.maxNs.Load()))
		}
	}
	return time.Duration(h.maxNs.Load())
}

// measurement summarises the histogram as a Measurement (seconds).
func (h *latHist) measurement(errKinds map[string]int, total time.Duration) Measurement {
	m := Measurement{Succeeded: int(h.n.Load()), TotalSecs: total.Seconds()}
	for k, n := range errKinds {
		if n == 0 {
			continue
		}
		if m.ErrorKinds == nil {
			m.ErrorKinds = map[string]int{}
		}
		m.ErrorKinds[k] = n
		m.Errors += n
	}
	if m.Succeeded == 0 {
		return m
	}
	m.Average = float64(h.sumNs.Load()) / float64(m.Succeeded) / 1e9
	m.Slowest = time.Duration(h.maxNs.Load()).Seconds()
	if total > 0 {
		m.RPS = float64(m.Succeeded) / total.Seconds()
	}
	m.Percentiles = map[string]float64{}
	for _, p := range []float64{50, 90, 99, 99.9} {
		m.Percentiles[strconv.FormatFloat(p, 'f', -1, 64)] = h.pctl(p).Seconds()
	}
	return m
}
