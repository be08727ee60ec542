package robustness

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// kvState is a key as the store holds it at some revision.
type kvState struct {
	Value                       string
	Create, Mod, Version, Lease int64
}

// storeChange is one key's change at one revision, read back from the
// store's MVCC history.
type storeChange struct {
	Rev   int64
	Key   string
	Put   bool // else a delete
	Value string
	KV    kvState  // put: the key after the change
	Prev  *kvState // the key before the change; nil if it did not exist
	// InTxn: the revision also put a key, so a client's txn made it
	// (derive sets it); a lease's end only deletes.
	InTxn bool
}

// leaseEnd says whether the change is a delete of a key attached to a
// lease by a lease's end (revoke or expiry). The traffic deletes a leased
// key itself only in a txn that also puts a unique value (the lease-heavy
// profile's newLeaseKeyDelete), which tells the two apart.
func (ch storeChange) leaseEnd() bool {
	return !ch.Put && !ch.InTxn && ch.Prev != nil && ch.Prev.Lease != 0
}

// storeHistory is the key space at every revision from 1 to Last, and the
// changes each revision made. It is the reference the client history and
// the watch history are checked against.
type storeHistory struct {
	Last    int64
	states  []map[string]kvState // by revision
	byRev   [][]storeChange      // by revision, keys sorted
	changes []storeChange        // in revision order
}

// at is key at revision rev.
func (h *storeHistory) at(rev int64, key string) (kvState, bool) {
	if rev < 1 || rev > h.Last {
		return kvState{}, false
	}
	kv, ok := h.states[rev][key]
	return kv, ok
}

// readHistory reads the key space at every revision from 1 to last through
// cl (serializable ranges at each revision; nothing is compacted in these
// runs) and derives the changes each revision made. Every revision after 1
// must change at least one key, and more than one only when a lease's end
// deletes several keys; anything else is an anomaly. The watchers' history
// is checked against this one (watch.go's checks), so the two confirm each
// other.
//
// With compaction in the traffic, the revisions a compaction would remove
// were read before it was sent (compactor.go) and are passed in as read:
// read[r] is the key space at revision r for r < len(read).
func readHistory(ctx context.Context, cl *clientv3.Client, last int64, read []map[string]kvState) (*storeHistory, []anomaly, error) {
	from := max(int64(len(read)), 1)
	states, err := readStates(ctx, cl, from, last)
	if err != nil {
		return nil, nil, err
	}
	h := &storeHistory{Last: last, states: make([]map[string]kvState, last+1), byRev: make([][]storeChange, last+1)}
	copy(h.states, read)
	copy(h.states[from:], states)
	return h, h.derive(), nil
}

// readStates reads the key space at revisions from..to (serializable
// ranges at each revision) through cl; out[i] is revision from+i.
func readStates(ctx context.Context, cl *clientv3.Client, from, to int64) ([]map[string]kvState, error) {
	out := make([]map[string]kvState, max(to-from+1, 0))
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	revs := make(chan int64)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range revs {
				resp, err := cl.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithRev(r), clientv3.WithSerializable())
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("range at revision %d: %w", r, err)
					}
				} else {
					st := make(map[string]kvState, len(resp.Kvs))
					for _, e := range resp.Kvs {
						st[string(e.Key)] = kvState{string(e.Value), e.CreateRevision, e.ModRevision, e.Version, e.Lease}
					}
					out[r-from] = st
				}
				mu.Unlock()
			}
		}()
	}
	for r := from; r <= to; r++ {
		revs <- r
	}
	close(revs)
	wg.Wait()
	return out, firstErr
}

// derive computes the changes of every revision from the states, and
// reports revisions that change nothing, or a key without a new mod
// revision. A revision that changes several keys must be one client txn
// (resolve checks that) or one lease's end (checkLeases): a revision with a
// put marks its deletes InTxn, one without must be deletes by a lease's
// end only.
func (h *storeHistory) derive() []anomaly {
	last := h.Last
	var anoms []anomaly
	for r := int64(2); r <= last; r++ {
		prev, cur := h.states[r-1], h.states[r]
		var here []storeChange
		for k, e := range cur {
			p, had := prev[k]
			if e.Mod == r {
				ch := storeChange{Rev: r, Key: k, Put: true, Value: e.Value, KV: e}
				if had {
					ch.Prev = &p
				}
				here = append(here, ch)
			} else if !had || p != e {
				anoms = append(anoms, anomaly{anomRevisionHistory, fmt.Sprintf("revision %d: %s=%s (mod %d) was %v at revision %d", r, k, e.Value, e.Mod, p, r-1)})
			}
		}
		for k, p := range prev {
			if _, ok := cur[k]; !ok {
				p := p
				here = append(here, storeChange{Rev: r, Key: k, Prev: &p})
			}
		}
		sort.Slice(here, func(i, j int) bool { return here[i].Key < here[j].Key })
		puts := 0
		for _, ch := range here {
			if ch.Put {
				puts++
			}
		}
		if puts > 0 && len(here) > 1 {
			for i := range here {
				here[i].InTxn = true
			}
		}
		switch {
		case len(here) == 0:
			anoms = append(anoms, anomaly{anomRevisionHistory, fmt.Sprintf("revision %d changes no key", r)})
		case len(here) > 1 && puts == 0:
			for _, ch := range here {
				if !ch.leaseEnd() {
					anoms = append(anoms, anomaly{anomRevisionHistory, fmt.Sprintf("revision %d deletes %d keys, not all by a lease's end: %v", r, len(here), here)})
					break
				}
			}
		}
		h.byRev[r] = here
		h.changes = append(h.changes, here...)
	}
	return anoms
}

// checkList checks a list against the store at its revision: every page
// together must be exactly the keys under the prefix there, in order, with
// their values and mod revisions, and the first page's count their number.
func checkList(o *Op, h *storeHistory) (anomaly, bool) {
	var want []listedKV
	if o.Rev >= 1 && o.Rev <= h.Last {
		for k, kv := range h.states[o.Rev] {
			if strings.HasPrefix(k, o.Key) {
				want = append(want, listedKV{k, kv.Value, kv.Mod})
			}
		}
	}
	slices.SortFunc(want, func(a, b listedKV) int { return strings.Compare(a.Key, b.Key) })
	if o.Rev > h.Last || !slices.Equal(want, o.Listed) || o.Count != int64(len(want)) {
		return anomaly{anomReadAtRevision, fmt.Sprintf("%s: the store has %d keys at revision %d: %v", o, len(want), o.Rev, want)}, true
	}
	return anomaly{}, false
}

// checkReadsAtRevision checks every successful read (a get, a failed
// compare-and-set's else branch) against the store at the read's header
// revision: an etcd read is served at exactly that revision, so presence,
// value and mod revision must be what the history has there. This ties
// reads to revisions, which the per-key model only bounds.
func checkReadsAtRevision(ops []*Op, h *storeHistory) []anomaly {
	var anoms []anomaly
	for _, o := range ops {
		if o.Kind == OpList && o.Err == "" {
			if a, bad := checkList(o, h); bad {
				anoms = append(anoms, a)
			}
			continue
		}
		if o.Kind == OpTxn && o.Err == "" && !o.Unknown && !o.Succeeded {
			for i, r := range o.ReadKVs {
				kv, ok := h.at(o.Rev, o.Reads[i])
				if o.Rev > h.Last || ok != r.Found || (ok && (kv.Value != r.Value || kv.Mod != r.ModRev)) {
					anoms = append(anoms, anomaly{anomReadAtRevision, fmt.Sprintf("%s: the store has %s=%v at revision %d", o, o.Reads[i], kv, o.Rev)})
				}
			}
			continue
		}
		if o.Err != "" || o.Unknown || !(o.Kind == OpGet || (o.Kind == OpCAS && !o.Succeeded)) {
			continue
		}
		kv, ok := h.at(o.Rev, o.Key)
		if o.Rev > h.Last || ok != o.Found || (ok && (kv.Value != o.Got || kv.Mod != o.ModRev)) {
			want := "absent"
			if ok {
				want = fmt.Sprintf("%s (mod %d)", kv.Value, kv.Mod)
			}
			anoms = append(anoms, anomaly{anomReadAtRevision, fmt.Sprintf("%s: the store has %s at revision %d", o, want, o.Rev)})
			if len(anoms) > 20 {
				break
			}
		}
	}
	return anoms
}
