package robustness

import (
	"fmt"
	"sort"
	"time"
)

// leaseInfo is what the clients did with one lease.
type leaseInfo struct {
	grant   *Op   // the grant that returned it
	renewed []*Op // keep-alives that answered a TTL
	revokes []*Op // revokes sent (acknowledged, failed or unknown)
	endRev  int64 // the revision its end deleted its keys at (0: none seen)
}

// leaseEnds groups the store's lease-end deletions by revision: the lease
// each revision ended and the keys it deleted.
type leaseEnd struct {
	rev   int64
	lease int64
	keys  []string
}

// checkLeases checks the leases against the store's history and returns
// one lease-delete op per key a lease's end deleted, for the per-key model:
//
//   - a lease's end deletes every key attached to it in one revision, and
//     only its keys (one lease per revision);
//   - no key is attached to a lease after its end, and no key keeps a lease
//     a client revoked;
//   - an acknowledged revoke answers at or after its deletion's revision;
//   - a lease no client revoked ends no earlier than its last renewal
//     allows: not before (call of the grant or of the last keep-alive that
//     answered) + TTL, measured against the earliest time a watcher saw the
//     deletion. So a kept-alive lease's keys never vanish while its
//     keep-alives get through.
//
// The lease-delete ops carry the deletion's revision; their time runs from
// the lease's grant call to the first of: an acknowledged revoke's return,
// a watcher's receipt of the revision. The per-key model orders them by
// revision; checkReadsAtRevision pins reads to revisions.
func checkLeases(ops []*Op, h *storeHistory, seenAt map[int64]time.Duration) ([]anomaly, []*Op) {
	var anoms []anomaly
	leases := map[int64]*leaseInfo{}
	info := func(id int64) *leaseInfo {
		if leases[id] == nil {
			leases[id] = &leaseInfo{}
		}
		return leases[id]
	}
	for _, o := range ops {
		switch o.Kind {
		case OpLeaseGrant:
			if o.Err == "" {
				info(o.Lease).grant = o
			}
		case OpKeepAlive:
			if o.Err == "" && o.TTL > 0 {
				info(o.Lease).renewed = append(info(o.Lease).renewed, o)
			}
		case OpLeaseRevoke:
			info(o.Lease).revokes = append(info(o.Lease).revokes, o)
		}
	}

	// Lease ends, revision by revision.
	var ends []leaseEnd
	for r := int64(2); r <= h.Last; r++ {
		var end *leaseEnd
		for _, ch := range h.byRev[r] {
			if !ch.leaseEnd() {
				continue
			}
			if end == nil {
				ends = append(ends, leaseEnd{rev: r, lease: ch.Prev.Lease})
				end = &ends[len(ends)-1]
			}
			if ch.Prev.Lease != end.lease {
				anoms = append(anoms, anomaly{anomLeaseSplit, fmt.Sprintf("revision %d deletes keys of leases %x and %x", r, end.lease, ch.Prev.Lease)})
				continue
			}
			end.keys = append(end.keys, ch.Key)
		}
		if end == nil {
			continue
		}
		for k, kv := range h.states[r-1] {
			if kv.Lease == end.lease {
				if _, still := h.states[r][k]; still {
					anoms = append(anoms, anomaly{anomLeaseSplit, fmt.Sprintf("lease %x's end at revision %d left its key %s", end.lease, r, k)})
				}
			}
		}
		li := info(end.lease)
		if li.endRev != 0 {
			anoms = append(anoms, anomaly{anomLeaseSplit, fmt.Sprintf("lease %x's keys deleted at revisions %d and %d", end.lease, li.endRev, r)})
		} else {
			li.endRev = r
		}
	}

	// Keys attached after the end, or left after an acknowledged revoke.
	for _, ch := range h.changes {
		if ch.Put && ch.KV.Lease != 0 {
			if li := leases[ch.KV.Lease]; li != nil && li.endRev != 0 && ch.Rev > li.endRev {
				anoms = append(anoms, anomaly{anomLeaseLeftKey, fmt.Sprintf("%s put with lease %x at revision %d, after its end at %d", ch.Key, ch.KV.Lease, ch.Rev, li.endRev)})
			}
		}
	}
	final := h.states[h.Last]
	for id, li := range leases {
		for _, rv := range li.revokes {
			if rv.Err != "" {
				continue
			}
			// At the revoke's revision (its keys deleted) and at the
			// end, no key may hold the lease.
			at := final
			if rv.Rev > 0 && rv.Rev < int64(len(h.states)) {
				at = h.states[rv.Rev]
			}
			for k, kv := range at {
				if kv.Lease == id {
					anoms = append(anoms, anomaly{anomLeaseLeftKey, fmt.Sprintf("%s: key %s still has the lease at revision %d", rv, k, rv.Rev)})
				}
			}
			if rv.Rev < h.Last {
				for k, kv := range final {
					if kv.Lease == id {
						anoms = append(anoms, anomaly{anomLeaseLeftKey, fmt.Sprintf("%s: key %s still has the lease at the end", rv, k)})
					}
				}
			}
			if li.endRev != 0 && rv.Rev < li.endRev {
				anoms = append(anoms, anomaly{anomLeaseRevokeRev, fmt.Sprintf("%s: the lease's keys were deleted at revision %d", rv, li.endRev)})
			}
		}
	}

	// Early expiry, and the lease-delete ops.
	var dels []*Op
	for _, end := range ends {
		li := info(end.lease)
		seen, observed := seenAt[end.rev]
		var revokedBy *Op
		for _, rv := range li.revokes {
			if !observed || rv.Call < seen {
				revokedBy = rv
			}
		}
		if revokedBy == nil && observed && li.grant != nil {
			bound, by := li.grant.Call+time.Duration(li.grant.TTL)*time.Second, li.grant
			for _, ka := range li.renewed {
				if b := ka.Call + time.Duration(ka.TTL)*time.Second; b > bound && ka.Call < seen {
					bound, by = b, ka
				}
			}
			if seen < bound {
				anoms = append(anoms, anomaly{anomLeaseEarly, fmt.Sprintf("lease %x (no revoke sent) ended at revision %d, seen by a watcher at %.3fs, before %.3fs: %s", end.lease, end.rev, seen.Seconds(), bound.Seconds(), by)})
			}
		}
		call, ret := time.Duration(0), never
		if li.grant != nil {
			call = li.grant.Call
		}
		if observed {
			ret = seen
		}
		for _, rv := range li.revokes {
			if rv.Err == "" && rv.Return < ret && rv.Rev >= end.rev {
				ret = rv.Return
			}
		}
		sort.Strings(end.keys)
		for _, k := range end.keys {
			dels = append(dels, &Op{Client: -1, Member: "-", Kind: OpLeaseDelete, Key: k, Lease: end.lease,
				Rev: end.rev, Call: call, Return: ret})
		}
	}
	return anoms, dels
}
