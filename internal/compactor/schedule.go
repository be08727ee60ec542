package compactor

import (
	"time"

	"go.uber.org/zap"
)

// schedule is the decision logic of one mode: which revision to compact at
// which time. It is synchronous and clock-free: the caller passes the time
// and the current revision. Not safe for concurrent use; the Runner calls
// it from its one goroutine, in this order per cycle:
//
//	start(now)                     once, before the first cycle
//	sample(rev)                    each cycle, before waiting interval()
//	next(now, rev) → (r, true)     after the wait, only while leader
//	done(now, r, succeeded)        after compacting r
type schedule interface {
	// mode is ModePeriodic or ModeRevision (used in log messages).
	mode() string
	// interval is the wait between two cycles. Invariant: interval() > 0.
	interval() time.Duration
	start(now time.Time)
	sample(rev int64)
	// next returns the revision to compact now, if any; rev is the
	// store's current revision.
	next(now time.Time, rev int64) (int64, bool)
	// done records the outcome of compacting rev. succeeded is true when
	// the compaction was applied or rev was already compacted.
	done(now time.Time, rev int64, succeeded bool)
	// fields are the mode's log fields besides "revision".
	fields() []zap.Field
}
