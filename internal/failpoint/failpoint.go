// Package failpoint holds cairn's test-only fault hooks. Each hook is a
// named, deliberately wrong behaviour at one place in the product, inert
// unless the environment variable CAIRN_TEST_FAILPOINTS, read once at start,
// names it (a comma-separated list). Only tests set it: the robustness suite
// switches a hook on to show that its checkers catch the bug shape
// (docs/robustness.md lists them). Nothing else may depend on a hook.
package failpoint

import (
	"os"
	"strings"
)

// EnvVar is the environment variable naming the active hooks.
const EnvVar = "CAIRN_TEST_FAILPOINTS"

// The hooks.
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
	// CompactDropsTombstone: a compaction at revision c removes from disk
	// a tombstone exactly at c (etcd up to 3.5.15 did), so a watch from c
	// misses that delete (internal/mvcc, keyIndex.compact).
	CompactDropsTombstone = "compact-drops-tombstone"
	// WALSlowFsync: every fdatasync of the WAL's tail takes a second
	// longer (internal/wal, WAL.syncTail): a stalled disk, not a wrong
	// result; the raft loop must keep its heartbeats going through it.
	WALSlowFsync = "wal-slow-fsync"
)

var active = parse(os.Getenv(EnvVar))

func parse(s string) map[string]bool {
	if s == "" {
		return nil
	}
	m := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		if name = strings.TrimSpace(name); name != "" {
			m[name] = true
		}
	}
	return m
}

// On says whether hook name is active. With CAIRN_TEST_FAILPOINTS unset it
// is a lookup in a nil map: false.
func On(name string) bool { return active[name] }
