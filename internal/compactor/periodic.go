package compactor

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

// periodic is etcd's periodic mode: keep the revisions of the last
// retention period.
//
// It samples the current revision every min(retention, 1h)/10 (the sample
// interval) and keeps a sliding window of the last retention/interval + 1
// samples, so the window's oldest entry is the revision observed about
// retention ago. The first compaction is due once retention has passed since
// start; after that one is due every min(retention, 1h) after the last
// success. A due compaction uses the window's oldest sample and is skipped
// when that revision is the one last compacted. A failed compaction is tried
// again at the next sample, with the window moved on.
//
// Examples (etcd's): retention 5m samples every 30s and compacts every 5m;
// 1h samples every 6m and compacts every hour; 24h samples every 6m, waits
// 24h for the first compaction, then compacts every hour the revision
// observed a little over 24h earlier.
type periodic struct {
	retention time.Duration // Invariant: retention >= retryDivisor (so every > 0)
	every     time.Duration // sample and retry interval: min(retention, 1h)/10
	compactor time.Duration // min(retention, 1h)
	keep      int           // window size: retention/every + 1

	// revs is the sliding window of samples, oldest first.
	// Invariant: len(revs) <= keep.
	revs []int64
	// lastSuccess is when the last compaction succeeded (start at first).
	lastSuccess time.Time
	// lastRevision is the revision last compacted (0: none).
	lastRevision int64
	// wait is the time that must pass after lastSuccess before the next
	// compaction: retention until the first attempt, then compactor.
	wait time.Duration
}

// retryDivisor splits the compaction interval into sample intervals.
const retryDivisor = 10

func newPeriodic(retention time.Duration) (*periodic, error) {
	base := min(retention, time.Hour)
	every := base / retryDivisor
	if every <= 0 {
		return nil, fmt.Errorf("periodic retention %v: %w", retention, ErrRetentionTooShort)
	}
	keep := int(retention/every) + 1
	return &periodic{
		retention: retention,
		every:     every,
		compactor: base,
		keep:      keep,
		revs:      make([]int64, 0, keep),
		wait:      retention,
	}, nil
}

func (p *periodic) mode() string            { return ModePeriodic }
func (p *periodic) interval() time.Duration { return p.every }
func (p *periodic) start(now time.Time)     { p.lastSuccess = now }

func (p *periodic) sample(rev int64) {
	p.revs = append(p.revs, rev)
	if len(p.revs) > p.keep {
		p.revs = p.revs[1:]
	}
}

func (p *periodic) next(now time.Time, _ int64) (int64, bool) {
	if len(p.revs) == 0 {
		return 0, false
	}
	rev := p.revs[0]
	if now.Sub(p.lastSuccess) < p.wait || rev == p.lastRevision {
		return 0, false
	}
	// The first attempt ends the initial wait, whatever its outcome.
	p.wait = p.compactor
	return rev, true
}

func (p *periodic) done(now time.Time, rev int64, succeeded bool) {
	if succeeded {
		p.lastRevision = rev
		p.lastSuccess = now
	}
}

func (p *periodic) fields() []zap.Field {
	return []zap.Field{zap.Duration("compact-period", p.retention)}
}
