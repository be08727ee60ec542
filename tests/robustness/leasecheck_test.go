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
	// endSeen is when a watcher first saw that deletion (valid when seen).
	endSeen time.Duration
	seen    bool
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
func checkLeases(ops []*Op, h *storeHistory, seenAt map[int64]time.Duration) (anoms []anomaly, dels []*Op) {
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
	defer func() { anoms = append(anoms, checkLeaseAnswers(ops, leases)...) }()

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
	for _, end := range ends {
		li := info(end.lease)
		seen, observed := seenAt[end.rev]
		li.endSeen, li.seen = seen, observed
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

// checkLeaseAnswers checks the LeaseTimeToLive and LeaseLeases answers
// where the history decides them cheaply:
//
//   - LeaseTimeToLive is answered by the leader once everything committed
//     is applied (forwarded there by a follower), so it is linearizable: a
//     lease answered not found (TTL -1) is not renewed afterwards (a
//     keep-alive called after the answer returned that answered a TTL),
//     and, if no revoke of it was sent before the answer returned, the
//     answer came no earlier than its grant or last renewal allows (call +
//     TTL: no early expiry);
//   - a lease found answers the TTL its grant answered as the granted TTL,
//     and a remaining TTL no higher (give or take the election timeout a
//     new leader extends leases by); it was not revoked (acknowledged) nor
//     seen ended by a watcher before the question was sent;
//   - LeaseLeases answers from the member's own state, so: it lists no
//     lease before its grant was sent, nor one revoked through the same
//     member before the call, and lists every lease granted through the
//     same member before the call that a request sent after its return
//     found alive.
func checkLeaseAnswers(ops []*Op, leases map[int64]*leaseInfo) []anomaly {
	var anoms []anomaly
	bad := func(o *Op, format string, args ...any) {
		if len(anoms) < 20 {
			anoms = append(anoms, anomaly{anomLeaseAnswer, o.String() + ": " + fmt.Sprintf(format, args...)})
		}
	}
	// goneBefore says whether the lease was known ended before t.
	goneBefore := func(li *leaseInfo, t time.Duration) string {
		for _, rv := range li.revokes {
			if rv.Err == "" && rv.Return < t {
				return fmt.Sprintf("revoked by %s", rv)
			}
		}
		if li.seen && li.endSeen < t {
			return fmt.Sprintf("a watcher saw its end (revision %d) at %.3fs", li.endRev, li.endSeen.Seconds())
		}
		return ""
	}
	// lastAlive is, per lease, the request sent last that found it alive
	// (a renewal, or a TimeToLive that found it); aliveAfter says whether
	// one was sent after t.
	lastAlive := map[int64]*Op{}
	for _, o := range ops {
		alive := o.Err == "" && ((o.Kind == OpKeepAlive && o.TTL > 0) || (o.Kind == OpLeaseTTL && !o.leaseNotFound()))
		if alive && (lastAlive[o.Lease] == nil || lastAlive[o.Lease].Call < o.Call) {
			lastAlive[o.Lease] = o
		}
	}
	aliveAfter := func(id int64, _ *leaseInfo, t time.Duration) *Op {
		if o := lastAlive[id]; o != nil && o.Call > t {
			return o
		}
		return nil
	}
	for _, o := range ops {
		if o.Err != "" {
			continue
		}
		switch o.Kind {
		case OpLeaseTTL:
			li := leases[o.Lease]
			if li == nil {
				continue
			}
			if o.leaseNotFound() {
				if later := aliveAfter(o.Lease, li, o.Return); later != nil {
					bad(o, "not found, but alive later: %s", later)
				}
				revoked := false
				for _, rv := range li.revokes {
					revoked = revoked || rv.Call < o.Return
				}
				if li.grant != nil && !revoked {
					bound, by := li.grant.Call+time.Duration(li.grant.TTL)*time.Second, li.grant
					for _, ka := range li.renewed {
						if b := ka.Call + time.Duration(ka.TTL)*time.Second; b > bound && ka.Call < o.Return {
							bound, by = b, ka
						}
					}
					if o.Return < bound {
						bad(o, "not found before %.3fs (no revoke sent): expired early after %s", bound.Seconds(), by)
					}
				}
				continue
			}
			if li.grant != nil && o.GrantedTTL != li.grant.TTL {
				bad(o, "granted TTL %d, the grant answered %d", o.GrantedTTL, li.grant.TTL)
			}
			// A new leader extends every lease by an election timeout
			// (1 s in these runs), so the remaining TTL may pass the
			// granted one by that much.
			if o.TTL > o.GrantedTTL+2 {
				bad(o, "remaining TTL above the granted one plus an election timeout")
			}
			if why := goneBefore(li, o.Call); why != "" {
				bad(o, "found, but %s", why)
			}
		case OpLeaseList:
			// LeaseLeases answers from the member's own applied state
			// (cairn and etcd alike), so only what that member must
			// already have applied, or cannot have yet, is checked.
			listed := map[int64]bool{}
			for _, id := range o.Leases {
				listed[id] = true
				li := leases[id]
				if li == nil {
					continue
				}
				if li.grant != nil && li.grant.Call > o.Return {
					bad(o, "lists %x before its grant was sent: %s", id, li.grant)
				}
				for _, rv := range li.revokes {
					if rv.Err == "" && rv.Member == o.Member && rv.Return < o.Call {
						bad(o, "lists %x, revoked through the same member before: %s", id, rv)
					}
				}
			}
			for id, li := range leases {
				if listed[id] || li.grant == nil || li.grant.Member != o.Member || li.grant.Return >= o.Call {
					continue
				}
				if later := aliveAfter(id, li, o.Return); later != nil {
					bad(o, "does not list %x, granted through the same member before and alive later: %s", id, later)
				}
			}
		}
	}
	return anoms
}

// leaseNotFound says whether a TimeToLive answered "no such lease": TTL -1
// and no granted TTL. (A lease past its expiry but not yet revoked can
// answer a negative TTL with its granted TTL.)
func (o *Op) leaseNotFound() bool { return o.TTL == -1 && o.GrantedTTL == 0 }
