package robustness

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// watchStats counts what the watch checker saw.
type watchStats struct {
	Watchers, Sessions, Responses, Events, Progress int
	Resumed                                         int // sessions after the first (resumptions)
	Compacted                                       int // sessions cancelled for compaction (correctly)
}

// revKey names an event: its revision and key.
type revKey struct {
	rev int64
	key string
}

// checkWatchers checks each watcher's responses against the store's
// history, etcd's watch guarantees one by one:
//
//   - every event is the store's change at its revision: type, value,
//     create and mod revision, version, lease; IsCreate (create = mod) exactly
//     when the key did not exist before; prev_kv the key before the change
//     when asked for, absent otherwise;
//   - ordered: revisions never go back, across the watcher's sessions;
//   - unique: no (revision, key) twice;
//   - atomic: all of a revision's events in one response;
//   - no event below an explicit start revision (past, future, or a resume
//     from the last revision + 1);
//   - bookmarkable: no event at or below a progress notification received
//     before it;
//   - reliable and resumable: from the watcher's start (the first explicit
//     start revision, or the created notification's revision + 1 of a watch
//     from now) up to the highest revision it covered, every change under
//     its prefix was delivered, across resumptions;
//   - a cancellation for compaction names a revision the traffic compacted
//     at (a Compact sent before the cancellation arrived) above the
//     session's next revision (its start, or the last event + 1); the
//     events below it from that next revision on are excused from the
//     reliability rule (they are gone), nothing else is.
//
// Events after the history's last revision are not checked: leases go on
// expiring after the traffic stops.
//
// It also returns, per revision, the earliest time any watcher received an
// event of it (used to bound writes of unknown outcome and lease ends).
func checkWatchers(ws []*watchClient, h *storeHistory, compactions []compaction) ([]anomaly, map[int64]time.Duration, watchStats) {
	var anoms []anomaly
	seenAt := map[int64]time.Duration{}
	var st watchStats
	add := func(w *watchClient, kind, format string, args ...any) {
		if len(anoms) < 200 {
			anoms = append(anoms, anomaly{kind, w.String() + ": " + fmt.Sprintf(format, args...)})
		}
	}
	for _, w := range ws {
		st.Watchers++
		w.mu.Lock()
		sessions := w.sessions
		w.mu.Unlock()
		var (
			windowStart, lastEv, maxProgress int64
			seen                             = map[revKey]bool{}
			revResp                          = map[int64][2]int{} // revision → (session, response)
			excused                          [][2]int64           // revision ranges lost to a compaction
		)
		for si, sess := range sessions {
			st.Sessions++
			if si > 0 {
				st.Resumed++
			}
			start := sess.Start
			if start > 0 && windowStart == 0 {
				windowStart = start
			}
			for ri, r := range sess.Resps {
				st.Responses++
				if r.Created && sess.Start == 0 && windowStart == 0 {
					windowStart = r.Rev + 1
				}
				if r.Canceled && r.CompactRev != 0 {
					next := max(start, lastEv+1)
					if start == 0 && lastEv == 0 {
						next = windowStart
					}
					sent := false
					for _, cp := range compactions {
						sent = sent || (cp.Rev == r.CompactRev && cp.Call <= r.At)
					}
					switch {
					case !sent:
						add(w, anomWatchCompact, "session %d cancelled as compacted at %d: no compaction at that revision had been sent", si, r.CompactRev)
					case r.CompactRev <= next:
						add(w, anomWatchCompact, "session %d cancelled as compacted at %d, but it needed revision %d on", si, r.CompactRev, next)
					default:
						excused = append(excused, [2]int64{next, r.CompactRev - 1})
						st.Compacted++
					}
				}
				if r.Progress {
					st.Progress++
					if r.Rev > maxProgress {
						maxProgress = r.Rev
					}
					continue
				}
				for _, ev := range r.Events {
					rev := ev.KV.Mod
					if rev > h.Last {
						// After the revision the history was read at
						// (leases go on expiring after the traffic).
						continue
					}
					st.Events++
					rk := revKey{rev, ev.Key}
					if t, ok := seenAt[rev]; !ok || r.At < t {
						seenAt[rev] = r.At
					}
					switch {
					case seen[rk]:
						add(w, anomWatchDuplicate, "%s at revision %d again (session %d)", ev.Key, rev, si)
					case rev < lastEv:
						add(w, anomWatchOrder, "%s at revision %d after revision %d (session %d)", ev.Key, rev, lastEv, si)
					}
					if start > 0 && rev < start {
						add(w, anomWatchStart, "%s at revision %d, session %d started at %d", ev.Key, rev, si, start)
					}
					if rev <= maxProgress {
						add(w, anomWatchBookmark, "%s at revision %d after a progress notification at %d", ev.Key, rev, maxProgress)
					}
					if at, ok := revResp[rev]; ok && at != [2]int{si, ri} {
						add(w, anomWatchAtomic, "revision %d in session %d response %d and session %d response %d", rev, at[0], at[1], si, ri)
					}
					revResp[rev] = [2]int{si, ri}
					seen[rk] = true
					if rev > lastEv {
						lastEv = rev
					}
					if !strings.HasPrefix(ev.Key, w.prefix) {
						add(w, anomWatchEvent, "%s does not match the prefix", ev.Key)
						continue
					}
					// A server reads prev_kv at the event's revision - 1
					// and leaves it out when that is compacted (etcd
					// does): a compaction above it sent before the
					// response arrived excuses a missing prev_kv.
					prevGone := slices.ContainsFunc(compactions, func(cp compaction) bool { return cp.Rev > rev-1 && cp.Call <= r.At })
					checkEvent(w, ev, h, prevGone, add)
				}
			}
		}
		covered := min(max(lastEv, maxProgress), h.Last)
		if windowStart == 0 {
			continue
		}
		missing := 0
		var first []string
		for r := windowStart; r <= covered; r++ {
			if slices.ContainsFunc(excused, func(e [2]int64) bool { return e[0] <= r && r <= e[1] }) {
				continue
			}
			for _, ch := range h.byRev[r] {
				if strings.HasPrefix(ch.Key, w.prefix) && !seen[revKey{r, ch.Key}] {
					missing++
					if len(first) < 5 {
						first = append(first, fmt.Sprintf("%s@%d", ch.Key, r))
					}
				}
			}
		}
		if missing > 0 {
			add(w, anomWatchGap, "%d events between revisions %d and %d not delivered, first %v", missing, windowStart, covered, first)
		}
	}
	return anoms, seenAt, st
}

// checkEvent compares one event with the store's change at its revision.
func checkEvent(w *watchClient, ev watchEvent, h *storeHistory, prevGone bool, add func(*watchClient, string, string, ...any)) {
	rev := ev.KV.Mod
	var ch *storeChange
	if rev >= 1 && rev <= h.Last {
		for i := range h.byRev[rev] {
			if h.byRev[rev][i].Key == ev.Key {
				ch = &h.byRev[rev][i]
			}
		}
	}
	if ch == nil {
		add(w, anomWatchEvent, "%s at revision %d: the store changed no such key there", describeEvent(ev), rev)
		return
	}
	want := watchEvent{Put: ch.Put, Key: ch.Key, KV: kvState{Mod: rev}}
	if ch.Put {
		want.KV = ch.KV
	}
	if ev.Put != want.Put || ev.KV != want.KV {
		add(w, anomWatchEvent, "%s, the store's change is %s", describeEvent(ev), describeEvent(want))
		return
	}
	if ev.Put && (ev.KV.Create == rev) != (ch.Prev == nil) {
		add(w, anomWatchEvent, "%s: IsCreate is %t", describeEvent(ev), ev.KV.Create == rev)
	}
	switch {
	case !w.prevKV && ev.Prev != nil:
		add(w, anomWatchPrevKV, "%s carries prev_kv %v, not asked for", describeEvent(ev), *ev.Prev)
	case w.prevKV && ev.Prev == nil && ch.Prev != nil && prevGone:
	case w.prevKV && (ev.Prev == nil) != (ch.Prev == nil):
		add(w, anomWatchPrevKV, "%s: prev_kv %v, the store had %v", describeEvent(ev), ev.Prev, ch.Prev)
	case w.prevKV && ev.Prev != nil && *ev.Prev != *ch.Prev:
		add(w, anomWatchPrevKV, "%s: prev_kv %+v, the store had %+v", describeEvent(ev), *ev.Prev, *ch.Prev)
	}
}

func describeEvent(ev watchEvent) string {
	if !ev.Put {
		return fmt.Sprintf("DELETE %s (mod %d)", ev.Key, ev.KV.Mod)
	}
	return fmt.Sprintf("PUT %s=%s (create %d, mod %d, version %d, lease %x)", ev.Key, ev.KV.Value, ev.KV.Create, ev.KV.Mod, ev.KV.Version, ev.KV.Lease)
}
