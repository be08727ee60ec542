package compactor

import (
	"time"

	"go.uber.org/zap"
)

// RevisionInterval is how often revision mode compacts (etcd's fixed
// 5 minutes; etcd has no flag for it).
const RevisionInterval = 5 * time.Minute

// revision is etcd's revision mode: every RevisionInterval, compact to the
// current revision minus retention when that is positive and differs from
// the revision last compacted. A failed compaction is retried at the next
// interval with a freshly computed revision.
//
// Example (etcd's): retention 10, current revision 100 → compact 90; still
// 100 five minutes later → nothing; 200 → compact 190.
type revision struct {
	retention int64
	// prev is the revision last compacted (0: none).
	prev int64
}

func newRevision(retention int64) *revision {
	return &revision{retention: retention}
}

func (r *revision) mode() string            { return ModeRevision }
func (r *revision) interval() time.Duration { return RevisionInterval }
func (r *revision) start(time.Time)         {}
func (r *revision) sample(int64)            {}

func (r *revision) next(_ time.Time, current int64) (int64, bool) {
	rev := current - r.retention
	if rev <= 0 || rev == r.prev {
		return 0, false
	}
	return rev, true
}

func (r *revision) done(_ time.Time, rev int64, succeeded bool) {
	if succeeded {
		r.prev = rev
	}
}

func (r *revision) fields() []zap.Field {
	return []zap.Field{zap.Int64("revision-compaction-retention", r.retention)}
}
