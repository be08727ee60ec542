package raftnode

// Applying on the loop goroutine.
//
// A Ready that commits entries but appends none (a single member's second
// Ready of every write, or a follower learning a commit) has no disk work
// for the loop to overlap with the apply, so handing the batch to the
// applier's goroutine only adds a wake-up of that goroutine to the request's
// latency. When the applier has finished every batch handed to it, the loop
// offers such a batch to Config.ApplyInline instead, which may apply it
// there and then.

// InlineApplier applies a batch on the loop goroutine when it can.
//
// Threading: called only from the loop goroutine, after everything of the
// batch's Ready is persisted (ap.Persisted is closed) and only when every
// batch sent on the Apply channel before has been reported with
// Node.ApplyDone, so applied batches stay in log order. It must not call
// back into the Node (ApplyConfChange, Status, ...): the loop is busy
// running it. It returns false, having done nothing, for a batch it will
// not apply there (the loop then sends it on the Apply channel as usual);
// an error is fatal, as a failed persist is.
type InlineApplier func(ap Apply) (applied bool, err error)

// ApplyDone tells the loop that the applier finished a batch it received
// from the Apply channel. The applier must call it once per batch, after
// the batch's effects are complete.
func (n *Node) ApplyDone() { n.handedOut.Add(-1) }

// inlineEligible reports whether a Ready's batch may be offered to the
// inline applier: the Ready appends nothing, installs no snapshot, and no
// earlier batch is still with the applier.
func (n *Node) inlineEligible(appends int, ap Apply) bool {
	return n.cfg.ApplyInline != nil && appends == 0 && ap.Snapshot.Metadata.Index == 0 &&
		len(ap.Entries) > 0 && len(ap.Entries) <= maxInlineEntries && n.handedOut.Load() == 0
}

// maxInlineEntries bounds the batches applied on the loop, so ticks and
// peer messages never wait behind a long apply.
const maxInlineEntries = 64
