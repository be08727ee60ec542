// Package watch is cairn's watch hub: etcd's v3 watch semantics (ordered,
// unique, no gaps, every event of a revision in one response, resumable,
// progress notifications as bookmarks) for any number of watchers, without
// the writer ever waiting for them.
//
// # Shape
//
// Watchers that watch the same key range share a group. The hub indexes
// the groups (a map for single keys, an interval tree for ranges), so a
// write finds the groups its keys belong to in O(log n + matches), however
// many other watchers exist. For each revision a group gets one entry — the
// revision's events in that range — appended to the group's singly linked,
// lock-free log. That is all the writer does (Hub.OnEvents): no per-watcher
// work, no channel sends, no waiting.
//
// Each gRPC watch stream has one goroutine (Stream.Run) that turns its
// watchers' positions into responses:
//
//   - A synced watcher holds a cursor: the last entry of its group's log it
//     has consumed. Entries after it are its pending events; a response takes
//     up to BatchRevisions of them (whole revisions only). Entries nobody's
//     cursor reaches are garbage: the log costs memory only for watchers that
//     are behind.
//   - An unsynced watcher has no cursor, only nextRev, the first revision it
//     has not delivered. It catches up from the backend (mvcc.ReadTxn.Events)
//     in batches of BatchRevisions; near the head it takes the group's tail
//     and the hub's revision together (under the hub lock), reads the
//     backend up to that revision and continues from the tail: nothing
//     missed, nothing twice.
//   - A watcher whose cursor falls more than MaxLagBytes behind its group's
//     tail (its client reads slowly, or not at all) is moved aside by the
//     hub's sweeper: its cursor is dropped (so the log behind it can be
//     collected) and it becomes unsynced, catching up from the backend when
//     its stream can send again. MaxRetainedBytes bounds all logs together.
//
// Streams that have nothing to send sleep; they register on the groups of
// their watchers, and a new entry wakes the registered streams (a stream
// that is busy is not registered, so under load waking costs nothing).
//
// # Revisions
//
// The hub's revision (Hub.Rev) is the newest revision whose entries are all
// linked: OnEvents links first and then publishes the revision. So a
// stream that loads the revision R and then finds a cursor with no next
// entry knows the watcher has consumed everything up to R: that is when a
// progress notification at R may be sent (bookmarkable).
//
// # Snapshot install
//
// Hub.Restore, called after the store reloaded a new backend, bumps the
// hub's epoch and drops every cursor: each watcher catches up from the new
// backend from its nextRev (cancelled with the compaction revision if that
// history is gone). A watcher joining a log checks the epoch it read the
// tail in, so it never continues from a pre-restore tail.
//
// # Threading
//
//   - OnEvents and Restore: the store's writer goroutine (cairn's apply
//     loop), one at a time.
//   - Stream.Create/Cancel/RequestProgress/Close: any goroutine (the gRPC
//     receive loop); Stream.Run: the stream's own goroutine, the only one
//     that sends on the stream.
//   - The sweeper: the hub's goroutine, started by NewHub, stopped by Close.
//
// Locks, in the order they may be taken: Hub.mu, group.mu, watcher.mu.
package watch
