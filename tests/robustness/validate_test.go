package robustness

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Anomaly kinds. A run passes only with none.
const (
	anomNotLinearizable  = "linearizability: illegal history"
	anomCheckerTimeout   = "linearizability: checker timeout"
	anomLostWrite        = "acknowledged write lost"
	anomWrongRevision    = "acknowledged write at another revision"
	anomFailedCASApplied = "failed compare-and-set applied"
	anomDuplicateWrite   = "value written twice"
	anomPhantomWrite     = "write nobody issued"
	anomRevisionHistory  = "revision history inconsistent"
	anomRevisionOrder    = "revision went back"
	anomNoConvergence    = "members did not converge"
	anomHashMismatch     = "HashKV mismatch"
	anomNoRecovery       = "cluster did not recover"
	anomLogPanic         = "panic, fatal or data race in a log"
	anomLowLoad          = "load below the floor before the fault"
	anomFaultNotApplied  = "fault not confirmed"
	anomReadAtRevision   = "read differs from the store at its revision"

	// Watch rules (watch.go), each checked against the store's history.
	anomWatchOrder       = "watch: events out of order"
	anomWatchDuplicate   = "watch: event delivered twice"
	anomWatchGap         = "watch: event missing (not reliable)"
	anomWatchAtomic      = "watch: a revision split across responses"
	anomWatchBookmark    = "watch: event at or below a progress notification"
	anomWatchEvent       = "watch: event differs from the store"
	anomWatchPrevKV      = "watch: wrong prev_kv"
	anomWatchStart       = "watch: event before the start revision"
	anomWatchCompact     = "watch: wrong compact revision"
	anomWatchCompactEdge = "watch: events missing at the compact revision"
	anomWatchStuck       = "watch: did not reach the final revision"

	// Leases (lease.go).
	anomLeaseSplit     = "lease: keys not deleted in one revision"
	anomLeaseEarly     = "lease: expired before its TTL"
	anomLeaseLeftKey   = "lease: key left after the lease ended"
	anomLeaseRevokeRev = "lease: revoke answered before its deletion"
	anomLeaseAnswer    = "lease: TimeToLive or Leases answer contradicts the history"
)

type anomaly struct {
	Kind   string
	Detail string
}

func (a anomaly) String() string { return a.Kind + ": " + a.Detail }

// resolve matches the history against the store's changes: every
// acknowledged write must be there at its revision, nothing may be there
// that no client wrote, and each unknown write is settled where the store
// tells (values are unique): a put, cas or txn found in the store took
// effect at that revision (it stays open-ended in time), one not found had
// no effect and is dropped; a delete of a key the store shows and no
// acknowledged op explains is settled on an unknown delete of that key, the
// unknown deletes left had no effect. So every op this returns has a known
// revision. A revision that changes several keys
// must be exactly one txn's writes (or a lease's end, the lease checker's).
// It returns the ops to check.
func resolve(ops []*Op, changes []storeChange) ([]*Op, []anomaly) {
	var anoms []anomaly
	byValue := map[string]storeChange{}
	atRev := map[int64][]storeChange{}
	for _, ch := range changes {
		if ch.leaseEnd() {
			continue // the lease checker's (lease.go)
		}
		atRev[ch.Rev] = append(atRev[ch.Rev], ch)
		if !ch.Put {
			continue
		}
		if prev, dup := byValue[ch.Value]; dup {
			anoms = append(anoms, anomaly{anomDuplicateWrite, fmt.Sprintf("%s=%s at revisions %d and %d", ch.Key, ch.Value, prev.Rev, ch.Rev)})
			continue
		}
		byValue[ch.Value] = ch
	}
	claimed := map[int64]bool{}
	// single checks that a revision a one-key write claims changes only
	// that key.
	single := func(o *Op, rev int64) {
		if n := len(atRev[rev]); n > 1 {
			anoms = append(anoms, anomaly{anomRevisionHistory, fmt.Sprintf("%s: its revision %d changes %d keys: %v", o, rev, n, atRev[rev])})
		}
	}
	unknownDeletes := map[string][]*Op{}
	for _, o := range ops {
		if o.Failed() || !o.IsWrite() || (!o.IsKeyOp() && o.Kind != OpTxn) {
			continue
		}
		switch {
		case o.Kind == OpTxn:
			anoms = append(anoms, resolveTxn(o, byValue, atRev, claimed)...)
		case o.Kind == OpDelete && o.Unknown:
			unknownDeletes[o.Key] = append(unknownDeletes[o.Key], o)
		case o.Kind == OpDelete && o.Deleted > 0:
			chs := atRev[o.Rev]
			if len(chs) == 0 || chs[0].Put || chs[0].Key != o.Key {
				anoms = append(anoms, anomaly{anomLostWrite, fmt.Sprintf("%s: no delete of %s at revision %d", o, o.Key, o.Rev)})
			}
			single(o, o.Rev)
			claimed[o.Rev] = true
		case o.Kind == OpDelete:
		case o.Kind == OpCAS && !o.Unknown && !o.Succeeded:
			if ch, ok := byValue[o.Value]; ok {
				anoms = append(anoms, anomaly{anomFailedCASApplied, fmt.Sprintf("%s: written at revision %d", o, ch.Rev)})
				claimed[ch.Rev] = true
			}
		default: // put, or cas that succeeded or is unknown
			ch, ok := byValue[o.Value]
			if ok {
				claimed[ch.Rev] = true
				single(o, ch.Rev)
			}
			switch {
			case o.Unknown && ok:
				o.Unknown, o.Rev, o.Resolved = false, ch.Rev, fmt.Sprintf("took effect at revision %d", ch.Rev)
				o.Succeeded = o.Kind == OpCAS
				if ch.Key != o.Key {
					anoms = append(anoms, anomaly{anomWrongRevision, fmt.Sprintf("%s: value found on key %s", o, ch.Key)})
				}
			case o.Unknown:
				o.Resolved = "no effect"
			case !ok:
				anoms = append(anoms, anomaly{anomLostWrite, fmt.Sprintf("%s: %s=%s is not in the store's history", o, o.Key, o.Value)})
			case ch.Rev != o.Rev || ch.Key != o.Key:
				anoms = append(anoms, anomaly{anomWrongRevision, fmt.Sprintf("%s: the store has %s=%s at revision %d", o, ch.Key, ch.Value, ch.Rev)})
			}
		}
	}
	unexplained := map[string][]int64{} // revisions, in order
	for _, ch := range changes {
		if claimed[ch.Rev] || ch.leaseEnd() {
			continue
		}
		if ch.Put {
			anoms = append(anoms, anomaly{anomPhantomWrite, fmt.Sprintf("%s=%s at revision %d", ch.Key, ch.Value, ch.Rev)})
			continue
		}
		if ch.InTxn {
			continue // its revision's put is reported above
		}
		unexplained[ch.Key] = append(unexplained[ch.Key], ch.Rev)
	}
	// Each delete no acknowledged op explains is settled on an unknown
	// delete of its key: in revision order, each to the one called
	// earliest. Their return times are open, so if any assignment fits
	// the history this one does (an earlier call only widens an op's
	// interval).
	for k, revs := range unexplained {
		cands := unknownDeletes[k]
		slices.SortStableFunc(cands, func(a, b *Op) int { return cmp.Compare(a.Call, b.Call) })
		if len(revs) > len(cands) {
			anoms = append(anoms, anomaly{anomPhantomWrite, fmt.Sprintf("%d deletes of %s with only %d unknown deletes to explain them", len(revs), k, len(cands))})
		}
		for i, r := range revs {
			if i < len(cands) {
				o := cands[i]
				o.Unknown, o.Rev, o.Deleted = false, r, 1
				o.Resolved = fmt.Sprintf("took effect at revision %d", r)
			}
		}
	}
	var keep []*Op
	for _, o := range ops {
		if !o.IsKeyOp() && o.Kind != OpTxn && o.Kind != OpList && o.Kind != OpSerialList {
			continue
		}
		if o.Unknown {
			if o.Resolved == "" {
				o.Resolved = "no effect"
			}
			continue
		}
		keep = append(keep, o)
	}
	return keep, anoms
}

// resolveTxn settles one txn against the store's changes: an acknowledged
// success must have written each of its puts at its revision and deleted
// what it says it deleted, and nothing else there; an acknowledged failure
// wrote nothing; an unknown one took effect at the revision its values are
// at (all of them at one revision), or had no effect.
func resolveTxn(o *Op, byValue map[string]storeChange, atRev map[int64][]storeChange, claimed map[int64]bool) []anomaly {
	var anoms []anomaly
	rev := int64(0)
	for _, p := range o.Puts {
		if ch, ok := byValue[p.Value]; ok {
			rev = ch.Rev
			claimed[ch.Rev] = true
			break
		}
	}
	switch {
	case !o.Unknown && !o.Succeeded:
		if rev != 0 {
			anoms = append(anoms, anomaly{anomFailedCASApplied, fmt.Sprintf("%s: written at revision %d", o, rev)})
		}
		return anoms
	case o.Unknown && rev == 0:
		o.Resolved = "no effect"
		return nil
	case o.Unknown:
		o.Unknown, o.Rev, o.Succeeded = false, rev, true
		o.Resolved = fmt.Sprintf("took effect at revision %d", rev)
		o.DelCounts = make([]int64, len(o.Dels))
		for i, d := range o.Dels {
			for _, ch := range atRev[rev] {
				if !ch.Put && ch.Key == d {
					o.DelCounts[i] = 1
				}
			}
		}
	case rev != o.Rev:
		if rev == 0 {
			return []anomaly{{anomLostWrite, fmt.Sprintf("%s: none of its values is in the store's history", o)}}
		}
		anoms = append(anoms, anomaly{anomWrongRevision, fmt.Sprintf("%s: the store has its writes at revision %d", o, rev)})
		return anoms
	}
	claimed[o.Rev] = true
	// The revision's changes must be exactly the txn's writes.
	want := map[string]storeChange{}
	for _, p := range o.Puts {
		want[p.Key] = storeChange{Key: p.Key, Put: true, Value: p.Value}
	}
	for i, d := range o.Dels {
		if i < len(o.DelCounts) && o.DelCounts[i] > 0 {
			want[d] = storeChange{Key: d}
		}
	}
	got := map[string]storeChange{}
	for _, ch := range atRev[o.Rev] {
		got[ch.Key] = storeChange{Key: ch.Key, Put: ch.Put, Value: ch.Value}
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			anoms = append(anoms, anomaly{anomWrongRevision, fmt.Sprintf("%s: revision %d lacks its %s of %s (the store has %v there)", o, o.Rev, map[bool]string{true: "put", false: "delete"}[w.Put], k, atRev[o.Rev])})
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			anoms = append(anoms, anomaly{anomRevisionHistory, fmt.Sprintf("%s: its revision %d also changes %s (the store has %v there)", o, o.Rev, k, atRev[o.Rev])})
		}
	}
	return anoms
}

// checkRevisionOrder checks, apart from the model and with a readable
// report, that an operation that starts after another returned sees a
// revision at least as high, and one that changes the store gets a higher
// one. A serializable read only bounds the others: what it saw was
// applied, so committed, but it may itself be stale.
func checkRevisionOrder(ops []*Op) []anomaly {
	var done, all []*Op
	for _, o := range ops {
		if o.Failed() || o.Unknown {
			continue
		}
		all = append(all, o)
		if o.Return != never {
			done = append(done, o)
		}
	}
	slices.SortFunc(done, func(a, b *Op) int { return cmp.Compare(a.Return, b.Return) })
	slices.SortFunc(all, func(a, b *Op) int { return cmp.Compare(a.Call, b.Call) })
	var anoms []anomaly
	var maxRev int64
	var maxOp *Op
	i := 0
	for _, o := range all {
		if o.isSerializable() {
			continue
		}
		for i < len(done) && done[i].Return < o.Call {
			if done[i].Rev > maxRev {
				maxRev, maxOp = done[i].Rev, done[i]
			}
			i++
		}
		if o.Rev < maxRev || (o.Changes() && o.Rev == maxRev) {
			anoms = append(anoms, anomaly{anomRevisionOrder, fmt.Sprintf("%s started after %s returned", o, maxOp)})
			if len(anoms) > 20 {
				break
			}
		}
	}
	return anoms
}

// converge waits until every member reports the same revision and the same
// HashKV at it, and returns that revision.
func converge(c *cluster, timeout time.Duration) (int64, []anomaly) {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		rev, hashes, err := hashAll(c)
		if err == nil {
			same := true
			for _, h := range hashes[1:] {
				if h != hashes[0] {
					same = false
				}
			}
			if same {
				return rev, nil
			}
			last = fmt.Sprintf("at revision %d: %v", rev, hashes)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			kind := anomNoConvergence
			if err == nil {
				kind = anomHashMismatch
			}
			return 0, []anomaly{{kind, fmt.Sprintf("after %v: %s", timeout, last)}}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type memberHash struct {
	Hash, CompactRev int64
}

// hashAll asks every member's revision; if they agree, it asks each for
// HashKV at that revision.
func hashAll(c *cluster) (int64, []memberHash, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rev int64 = -1
	for _, m := range c.members {
		cl := c.client(m)
		st, err := cl.Status(ctx, m.Client)
		cl.Close()
		if err != nil {
			return 0, nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		if rev >= 0 && st.Header.Revision != rev {
			return 0, nil, fmt.Errorf("revisions differ: %s at %d, another at %d", m.Name, st.Header.Revision, rev)
		}
		rev = st.Header.Revision
	}
	var out []memberHash
	for _, m := range c.members {
		cl := c.client(m)
		h, err := cl.HashKV(ctx, m.Client, rev)
		cl.Close()
		if err != nil {
			return 0, nil, fmt.Errorf("%s: HashKV: %w", m.Name, err)
		}
		out = append(out, memberHash{int64(h.Hash), h.CompactRevision})
	}
	return rev, out, nil
}

// logPatterns are lines no member may log: a Go panic or fatal error, a
// zap panic/fatal entry, a race report.
var logPatterns = []string{"panic: ", "fatal error: ", `"level":"panic"`, `"level":"fatal"`, "WARNING: DATA RACE"}

// checkLogs scans each member's log.
func checkLogs(c *cluster) []anomaly {
	var anoms []anomaly
	for _, m := range append(c.members[:len(c.members):len(c.members)], c.spares...) {
		f, err := os.Open(m.LogPath)
		if err != nil {
			anoms = append(anoms, anomaly{anomLogPanic, fmt.Sprintf("%s: %v", m.Name, err)})
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			for _, p := range logPatterns {
				if strings.Contains(line, p) {
					anoms = append(anoms, anomaly{anomLogPanic, fmt.Sprintf("%s:%d: %.300s", m.LogPath, n, line)})
					break
				}
			}
		}
		f.Close()
	}
	return anoms
}
