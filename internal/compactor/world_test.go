package compactor

import (
	"context"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
)

// world is a fake member and clock for driving a Runner synchronously: the
// test sets the current revision, leadership and Compact's error per cycle.
type world struct {
	t0, now  time.Time
	rev      int64
	leader   bool
	fail     error
	attempts []attempt
}

// attempt is one Compact call: when (time since start), which revision,
// and whether Compact returned an error.
type attempt struct {
	At  time.Duration
	Rev int64
	Err bool
}

func newWorld() *world {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	return &world{t0: t0, now: t0, leader: true}
}

func (w *world) Now() time.Time { return w.now }
func (w *world) After(time.Duration) <-chan time.Time {
	panic("the synchronous driver does not wait")
}
func (w *world) Rev() int64     { return w.rev }
func (w *world) IsLeader() bool { return w.leader }
func (w *world) Compact(_ context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	w.attempts = append(w.attempts, attempt{At: w.now.Sub(w.t0), Rev: r.Revision, Err: w.fail != nil})
	return &pb.CompactionResponse{}, w.fail
}

// drive runs the Runner's loop synchronously for n cycles: before each
// cycle, set(k, w) adjusts the world; the cycle then samples, "waits"
// exactly one interval, and steps, as Run does.
func drive(t *testing.T, o Options, n int, set func(k int, w *world)) []attempt {
	t.Helper()
	w := newWorld()
	o.Clock = w
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	r, err := New(o, w)
	if err != nil {
		t.Fatal(err)
	}
	r.s.start(w.now)
	for k := 0; k < n; k++ {
		set(k, w)
		r.s.sample(w.Rev())
		w.now = w.now.Add(r.s.interval())
		if !r.step(context.Background()) {
			t.Fatal("step ended")
		}
	}
	return w.attempts
}
