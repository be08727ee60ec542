package compactor

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/mvcc"
)

func TestPeriodicIntervals(t *testing.T) {
	for _, tc := range []struct {
		retention, every, compactEvery time.Duration
		keep                           int
	}{
		{5 * time.Second, 500 * time.Millisecond, 5 * time.Second, 11},
		{5 * time.Minute, 30 * time.Second, 5 * time.Minute, 11},
		{59 * time.Minute, 354 * time.Second, 59 * time.Minute, 11},
		{time.Hour, 6 * time.Minute, time.Hour, 11},
		{2 * time.Hour, 6 * time.Minute, time.Hour, 21},
		// etcd's comment says 144 minutes here; its code samples every 6.
		{24 * time.Hour, 6 * time.Minute, time.Hour, 241},
	} {
		p, err := newPeriodic(tc.retention)
		if err != nil {
			t.Fatal(err)
		}
		if p.every != tc.every || p.compactor != tc.compactEvery || p.keep != tc.keep {
			t.Errorf("%v: sample every %v, compact every %v, keep %d; want %v, %v, %d",
				tc.retention, p.every, p.compactor, p.keep, tc.every, tc.compactEvery, tc.keep)
		}
	}
}

// The revision is k+1 in cycle k unless a case says otherwise, like etcd's
// fake revision getter (one more at each sample).
func TestPeriodicSchedule(t *testing.T) {
	m := time.Minute
	for _, tc := range []struct {
		name      string
		retention time.Duration
		cycles    int
		set       func(k int, w *world)
		want      []attempt
	}{{
		// etcd's TestPeriodicMinutes: sample every 30s; the first
		// compaction after 5m takes the first sample, then every 5m.
		name: "5m", retention: 5 * m, cycles: 60,
		want: []attempt{{5 * m, 1, false}, {10 * m, 10, false}, {15 * m, 20, false}, {20 * m, 30, false}, {25 * m, 40, false}, {30 * m, 50, false}},
	}, {
		// etcd's TestPeriodicHourly: sample every 6m, wait 2h, then hourly.
		name: "2h", retention: 2 * time.Hour, cycles: 50,
		want: []attempt{{2 * time.Hour, 1, false}, {3 * time.Hour, 10, false}, {4 * time.Hour, 20, false}, {5 * time.Hour, 30, false}},
	}, {
		// A day's retention: the first compaction after 24h, then hourly,
		// each keeping a little over a day (241 samples of 6m).
		name: "24h", retention: 24 * time.Hour, cycles: 260,
		want: []attempt{{24 * time.Hour, 1, false}, {25 * time.Hour, 10, false}, {26 * time.Hour, 20, false}},
	}, {
		name: "30s", retention: 30 * time.Second, cycles: 30,
		want: []attempt{{30 * time.Second, 1, false}, {60 * time.Second, 10, false}, {90 * time.Second, 20, false}},
	}, {
		// etcd's TestPeriodicPause: 1h retention, not leader for 33
		// samples (3h18m); the first cycle as leader compacts the sample
		// of 2h18m, the window's oldest.
		name: "paused then leader", retention: time.Hour, cycles: 34,
		set:  func(k int, w *world) { w.rev, w.leader = int64(k+1), k >= 33 },
		want: []attempt{{3*time.Hour + 24*m, 24, false}},
	}, {
		// Leadership lost after the first compaction: nothing at 10m and
		// 15m; back at 15m30s the due compaction runs at once.
		name: "leadership lost and regained", retention: 5 * m, cycles: 32,
		set:  func(k int, w *world) { w.rev, w.leader = int64(k+1), k < 10 || k >= 30 },
		want: []attempt{{5 * m, 1, false}, {15*m + 30*time.Second, 21, false}},
	}, {
		// etcd's TestPeriodicSkipRevNotChange: an unchanged revision is
		// not compacted again; once writes resume, the window's oldest
		// sample is still the old revision, so the next cycle compacts.
		name: "revision unchanged", retention: 5 * m, cycles: 75,
		set: func(k int, w *world) {
			w.rev = 100
			if k >= 60 {
				w.rev = int64(100 + k - 59)
			}
		},
		want: []attempt{{5 * m, 100, false}, {35*m + 30*time.Second, 101, false}},
	}, {
		// A failure is retried at the next sample; the window is not
		// full yet, so with the same revision.
		name: "failure retried next sample", retention: 5 * m, cycles: 22,
		set: func(k int, w *world) {
			w.rev, w.fail = int64(k+1), nil
			if k == 9 {
				w.fail = errors.New("etcdserver: request timed out")
			}
		},
		want: []attempt{{5 * m, 1, true}, {5*m + 30*time.Second, 1, false}, {10*m + 30*time.Second, 11, false}},
	}, {
		// Failures keep being retried every sample, the window moving on.
		name: "failures while window full", retention: 5 * m, cycles: 24,
		set: func(k int, w *world) {
			w.rev, w.fail = int64(k+1), nil
			if k == 19 || k == 20 {
				w.fail = errors.New("etcdserver: no leader")
			}
		},
		want: []attempt{{5 * m, 1, false}, {10 * m, 10, true}, {10*m + 30*time.Second, 11, true}, {11 * m, 12, false}},
	}, {
		// "Already compacted" counts as success, as in etcd.
		name: "already compacted is success", retention: 5 * m, cycles: 20,
		set: func(k int, w *world) {
			w.rev, w.fail = int64(k+1), nil
			if k == 9 {
				w.fail = fmt.Errorf("compact 1 (compacted 5): %w", mvcc.ErrCompacted)
			}
		},
		want: []attempt{{5 * m, 1, true}, {10 * m, 10, false}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			set := tc.set
			if set == nil {
				set = func(k int, w *world) { w.rev = int64(k + 1) }
			}
			got := drive(t, Options{Mode: ModePeriodic, Retention: tc.retention}, tc.cycles, set)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("compactions:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}
