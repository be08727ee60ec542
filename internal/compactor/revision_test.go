package compactor

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/mvcc"
)

func TestRevisionSchedule(t *testing.T) {
	m := time.Minute
	for _, tc := range []struct {
		name      string
		retention int64
		cycles    int
		set       func(k int, w *world)
		want      []attempt
	}{{
		// etcd's TestRevision: every 5m, current − 10 when positive and
		// new.
		name: "etcd example", retention: 10, cycles: 4,
		set:  func(k int, w *world) { w.rev = []int64{1, 100, 100, 200}[k] },
		want: []attempt{{10 * m, 90, false}, {20 * m, 190, false}},
	}, {
		name: "exactly retention is not positive", retention: 10, cycles: 2,
		set:  func(k int, w *world) { w.rev = []int64{10, 11}[k] },
		want: []attempt{{10 * m, 1, false}},
	}, {
		// etcd's TestRevisionPause: not leader for 3h, then the first
		// interval as leader compacts.
		name: "paused then leader", retention: 10, cycles: 37,
		set:  func(k int, w *world) { w.rev, w.leader = 100, k >= 36 },
		want: []attempt{{3*time.Hour + 5*m, 90, false}},
	}, {
		name: "failure retried next interval with a fresh revision", retention: 10, cycles: 3,
		set: func(k int, w *world) {
			w.rev, w.fail = []int64{100, 105, 105}[k], nil
			if k == 0 {
				w.fail = errors.New("etcdserver: request timed out")
			}
		},
		want: []attempt{{5 * m, 90, true}, {10 * m, 95, false}},
	}, {
		name: "failure retried with the same revision", retention: 10, cycles: 2,
		set: func(k int, w *world) {
			w.rev, w.fail = 100, nil
			if k == 0 {
				w.fail = errors.New("etcdserver: request timed out")
			}
		},
		want: []attempt{{5 * m, 90, true}, {10 * m, 90, false}},
	}, {
		name: "already compacted is success", retention: 10, cycles: 2,
		set: func(k int, w *world) {
			w.rev, w.fail = 100, nil
			if k == 0 {
				w.fail = fmt.Errorf("compact 90 (compacted 95): %w", mvcc.ErrCompacted)
			}
		},
		want: []attempt{{5 * m, 90, true}},
	}, {
		// "30m" in revision mode is 1.8e12 revisions, as in etcd.
		name: "duration as revision count", retention: int64(30 * time.Minute), cycles: 2,
		set:  func(k int, w *world) { w.rev = 1_800_000_000_000 + int64(k) },
		want: []attempt{{10 * m, 1, false}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := drive(t, Options{Mode: ModeRevision, Retention: time.Duration(tc.retention)}, tc.cycles, tc.set)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("compactions:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}
