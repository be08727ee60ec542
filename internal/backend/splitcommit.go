package backend

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/cairnkv/cairn/internal/failpoint"
)

// splitCommit is the seeded bug failpoint.CISavedApart (test builds only):
// instead of committing tx, which holds a whole batch, it rolls it back and
// commits the batch's bucket creations and its writes to the meta bucket
// (the consistent index among them) in one bbolt transaction, then the
// rest in another, with the crash point BackendBetweenCIAndData between
// them. A crash there leaves a consistent index that claims entries whose
// data is not on disk: a restart skips them. Caller holds wmu.
func (b *Backend) splitCommit(tx *bolt.Tx) error {
	ops := b.splitLog.takeLocked()
	if err := tx.Rollback(); err != nil {
		return err
	}
	var first, rest []recOp
	for _, op := range ops {
		if op.kind == recCreateBucket || (op.kind == recPut && string(op.bucket) == "meta") {
			first = append(first, op)
		} else {
			rest = append(rest, op)
		}
	}
	replay := func(ops []recOp) error {
		return b.db.Update(func(tx *bolt.Tx) error {
			for _, op := range ops {
				if err := replayOp(tx, op); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := replay(first); err != nil {
		return fmt.Errorf("split commit (meta): %w", err)
	}
	failpoint.Crash(failpoint.BackendBetweenCIAndData)
	if err := replay(rest); err != nil {
		return fmt.Errorf("split commit (data): %w", err)
	}
	return nil
}
