// Package lease is etcd 3.6's lessor as a synchronous core: the leases a
// member knows, the keys attached to each, and, on the leader (the primary
// lessor), when each lease expires and when its remaining TTL should be
// checkpointed. It reads time only through Config.Now, starts no goroutine
// and never proposes anything itself: the server runs the loop that asks
// Expired and DueCheckpoints and proposes the revocations and checkpoints
// through raft, so expiry is decided by the leader and applied by everyone.
//
// # Who calls what
//
//  1. Apply (the apply goroutine, in log order, on every member): Grant,
//     RevokeKeys then Remove (the keys are deleted in between, in the same
//     backend transaction), Checkpoint. These persist to bucket `lease`
//     through the Writer they are given, in etcd's format (schema.LeaseRecord).
//  2. The mvcc store (on the goroutine of its write transaction, and while it
//     rebuilds its index): Attach and Detach. Recover must run before the
//     store attaches keys, as in etcd.
//  3. Leadership (the server): Promote when this member leads and has
//     applied its term's first entry, extending every lease by the election
//     timeout so none expires early after a leader change; Demote when it
//     stops leading (every lease then lives forever until the next Promote).
//  4. Clients through the server (any goroutine): BeginRenew/Renew,
//     TimeToLive, Leases, Lookup.
//  5. The server's loop (any goroutine): Expired, DueCheckpoints.
//
// # Threading
//
// Every method may be called from any goroutine; one mutex guards the state
// and is never held while calling out of the package, so the mvcc store may
// call Attach and Detach while it holds its own locks.
//
// # Differences from etcd kept on purpose
//
// TimeToLive returns the attached keys sorted (etcd: map order) and Leases
// breaks ties of equal expiry by ID (etcd: map order); both are orders etcd
// can also produce. A revoked lease leaves the expiry queue at once instead
// of lazily.
package lease
