// Package raftnode runs a go.etcd.io/raft/v3 RawNode: it ticks it, feeds it
// proposals, drives its Ready loop, makes the log durable and hands committed
// entries to the applier. It knows nothing of what the entries mean.
//
// Threading: the RawNode is not safe for concurrent use, so one goroutine
// (the loop) owns it. Proposals reach it through a queue (Propose never
// blocks); peer messages through a buffered intake (Step), stepped in
// bursts; read-index, conf-change, campaign and unreachable/snapshot reports
// run on the loop as closures. Each round the loop first steps every queued proposal into raft
// as one MsgProp, then handles Readys until raft has none.
//
// The Ready-loop contract, in the order each Ready is handled:
//
//  1. Soft state (leader, role) is published first, so proposers and metrics
//     see a leader change before anything else of that Ready.
//  2. Read states are handed to OnReadStates (linearizable reads).
//  3. Committed entries and any incoming snapshot are queued for the applier
//     (Apply channel) together with a notify channel. Committed entries are
//     durable on a quorum, so applying them overlaps with step 5 — except when
//     a committed entry's index is at or above the first entry this Ready
//     appends: the entry is then not on the local disk yet (a follower told
//     of a commit in the append itself, or a new leader's entries replacing
//     an uncommitted tail, whatever the WAL held at those indexes before).
//     Apply.NeedsPersist then tells the applier to wait for step 6 first, so
//     its backend never gets ahead of its own WAL. Raft's storage holds only
//     what the WAL holds, so entries a restart reads back need no wait.
//  4. A leader sends its messages now, in parallel with its own disk write
//     (raft thesis §10.2.1); a follower waits until after step 5, because its
//     MsgAppResp promises that the entries are on disk.
//  5. Persist: an incoming snapshot is saved first (snap file, then WAL
//     snapshot record), then the HardState and new entries in one WAL Save
//     (one write and at most one fdatasync for the whole batch). Only then is
//     the in-memory raft storage updated.
//  6. The notify channel is closed: the applier may now rely on everything of
//     this Ready being durable (it waits for this before applying a snapshot).
//  7. Advance.
//
// While step 3 waits for a slow applier the loop keeps serving requests, so
// an applier blocked in ApplyConfChange cannot deadlock it.
//
// Batching: every proposal that arrives while a Ready is being persisted is
// carried by the next Ready, so concurrent writers share one fsync; on a
// single voter that Ready also carries the commit of the previous batch.
//
// The contract above is the synchronous mode. With Config.AsyncStorageWrites
// (raft's AsyncStorageWrites) steps 5-7 move to an append goroutine and the
// loop never waits for the disk: see async.go. There every append queued
// while a write runs shares the next Save and its fsync, and committed
// entries reach the applier only once durable locally.
package raftnode
