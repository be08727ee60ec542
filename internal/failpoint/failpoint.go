// Package failpoint holds cairn's test-only fault hooks: seeded bugs (a
// named, deliberately wrong behaviour at one place in the product), crash
// points (the process dies as if SIGKILLed at a named place) and disk
// faults (internal/wal's test file layer).
//
// They exist only in a binary built with the build tag cairn_failpoints
// (`go build -tags cairn_failpoints`): in a normal build On is a function
// that returns false, Crash does nothing, the environment variables below
// are never read, and the compiler removes the hooks. Only tests build the
// tagged binary (tests/framework.CairnFailpoints); the robustness suite
// switches a hook on to show that its checkers catch the bug shape, and
// injects crashes and disk faults (docs/robustness.md lists them). Nothing
// else may depend on a hook.
//
// In the tagged build (all variables are read once, at start):
//
//   - CAIRN_TEST_FAILPOINTS: a comma list of seeded bugs to switch on.
//   - CAIRN_TEST_CRASH: "point" or "point:n": the process kills itself
//     with SIGKILL at the n-th hit (default 1) of the named crash point,
//     after one line on stderr naming it.
//   - CAIRN_TEST_DISK: "lose-unsynced", "fsync-error" or "disk-full" (see
//     internal/wal's disk layer).
//   - CAIRN_TEST_ARM: "signal": the crash point and the fsync-error and
//     disk-full faults are armed only when the process receives SIGUSR1
//     (hits are counted from then); otherwise they are armed at start.
package failpoint

// The environment variables, read only by a tagged build.
const (
	EnvVar      = "CAIRN_TEST_FAILPOINTS"
	CrashEnvVar = "CAIRN_TEST_CRASH"
	DiskEnvVar  = "CAIRN_TEST_DISK"
	ArmEnvVar   = "CAIRN_TEST_ARM"
)

// The seeded bugs.
const (
	// WatchDropEvent: a watch response leaves out the events of every
	// revision divisible by 16 (internal/watch, Stream.sendEvents).
	WatchDropEvent = "watch-drop-event"
	// LeaseExpireEarly: a keep-alive is answered but does not push the
	// lease's expiry back, so a kept-alive lease ends at grant + TTL
	// (internal/lease, Lessor.Renew).
	LeaseExpireEarly = "lease-expire-early"
	// PutAckUnwritten: a put whose value ends in "0" is acknowledged
	// without being written (internal/txn, Executor.Put).
	PutAckUnwritten = "put-ack-unwritten"
	// LeaseRevokeLeavesKey: a lease's revoke or expiry leaves its keys
	// whose names end in "0" in place, pointing at the gone lease
	// (internal/lease, Lessor.RevokeKeys).
	LeaseRevokeLeavesKey = "lease-revoke-leaves-key"
	// ReadLocal: a linearizable range is served from local state without
	// a ReadIndex round, as a serializable one is (internal/server,
	// Server.Range).
	ReadLocal = "read-local"
	// RangeIgnoresRev: a linearizable range that asks for an explicit
	// revision is answered from the current state, as if it had asked
	// for none (internal/server, Server.Range).
	RangeIgnoresRev = "range-ignores-rev"
	// CompactDropsTombstone: a compaction at revision c removes from disk
	// a tombstone exactly at c (etcd up to 3.5.15 did), so a watch from c
	// misses that delete (internal/mvcc, keyIndex.compact).
	CompactDropsTombstone = "compact-drops-tombstone"
	// WALSlowFsync: every fdatasync of the WAL's tail takes a second
	// longer (internal/wal, WAL.syncTail): a stalled disk, not a wrong
	// result; the raft loop must keep its heartbeats going through it.
	WALSlowFsync = "wal-slow-fsync"
	// AckBeforeFsync: a WAL Save that raft requires to be durable
	// returns without its fsync when the WAL was synced less than 300 ms
	// ago, so entries are committed, applied and answered before they
	// are on disk (internal/wal, WAL.Save).
	AckBeforeFsync = "ack-before-fsync"
	// CISavedApart: each backend commit puts the meta bucket's writes
	// (the consistent index) in a bbolt transaction of their own, ahead
	// of the data's (internal/backend, commitLocked), with the crash
	// point BackendBetweenCIAndData between the two.
	CISavedApart = "ci-saved-apart"
)

// The crash points.
const (
	// WALBeforeFsync: a WAL Save that must sync has written its records
	// but not fsynced them (internal/wal, WAL.Save).
	WALBeforeFsync = "wal-before-fsync"
	// WALAfterFsync: a Ready's entries and hard state are durable in the
	// WAL, not yet in raft's memory log nor released to the applier
	// (internal/raftnode, Node.handle).
	WALAfterFsync = "wal-after-fsync"
	// BackendBeforeCommit: a backend batch (data and consistent index,
	// one bbolt transaction) is about to be committed (internal/backend,
	// commitLocked).
	BackendBeforeCommit = "backend-before-commit"
	// BackendAfterCommit: the batch is committed, the next write
	// transaction not begun.
	BackendAfterCommit = "backend-after-commit"
	// BackendBetweenCIAndData: only with CISavedApart: the consistent
	// index is committed, the data not.
	BackendBetweenCIAndData = "backend-between-ci-and-data"
	// SnapshotBeforeWALRecord: a raft snapshot's .snap file is durable,
	// its WAL snapshot record not written (internal/server,
	// raftStorage.saveSnapshotLocked).
	SnapshotBeforeWALRecord = "snapshot-before-wal-record"
	// SnapshotBeforeWALRelease: a snapshot this member took is durable
	// (file and WAL record), the WAL segments before it not released
	// (internal/server, raftStorage.saveLocalSnapshot).
	SnapshotBeforeWALRelease = "snapshot-before-wal-release"
	// CompactBetweenBatches: a physical compaction has committed one
	// batch of deletions and not the next (internal/mvcc,
	// physicalCompact).
	CompactBetweenBatches = "compact-between-batches"
	// DefragBeforeSwap: a defrag's copy is complete and durable, not yet
	// renamed over the database file (internal/backend, finishLocked).
	DefragBeforeSwap = "defrag-before-swap"
)

// The disk fault modes of CAIRN_TEST_DISK.
const (
	// DiskLoseUnsynced holds the WAL's writes in process memory until
	// they are fsynced, so a SIGKILL loses exactly what was not fsynced,
	// as a power loss does.
	DiskLoseUnsynced = "lose-unsynced"
	// DiskFsyncError makes every WAL fsync fail with EIO once armed.
	DiskFsyncError = "fsync-error"
	// DiskFull makes every WAL write fail with ENOSPC once armed, after
	// writing half of its bytes.
	DiskFull = "disk-full"
)
