package compactor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestParseRetention(t *testing.T) {
	for _, tc := range []struct {
		mode, in string
		want     time.Duration
		err      string
	}{
		{ModePeriodic, "0", 0, ""},
		{ModePeriodic, "", 0, ""},
		{ModePeriodic, "1", time.Hour, ""},
		{ModePeriodic, "72", 72 * time.Hour, ""},
		{ModeRevision, "1000", 1000, ""},
		{ModePeriodic, "30m", 30 * time.Minute, ""},
		{ModePeriodic, "1.5h", 90 * time.Minute, ""},
		{ModeRevision, "30m", 30 * time.Minute, ""},
		{ModePeriodic, "-5m", -5 * time.Minute, ""},
		{ModePeriodic, "abc", 0, `error parsing CompactionRetention: time: invalid duration "abc"`},
		{ModePeriodic, "-1", 0, `error parsing CompactionRetention: time: missing unit in duration "-1"`},
		{ModeRevision, "1.5", 0, `error parsing CompactionRetention: time: missing unit in duration "1.5"`},
		{"", "1", 0, "--auto-compaction-mode is undefined"},
	} {
		got, err := ParseRetention(tc.mode, tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseRetention(%q, %q) error = %v, want %q", tc.mode, tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRetention(%q, %q) = %v, %v; want %v", tc.mode, tc.in, got, err, tc.want)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want error
		text string
	}{
		{Options{Mode: "hourly", Retention: time.Hour}, ErrUnknownMode, "unsupported compaction mode hourly"},
		{Options{Mode: ModePeriodic, Retention: -5 * time.Minute}, ErrRetentionTooShort, ""},
		{Options{Mode: ModePeriodic, Retention: 9}, ErrRetentionTooShort, ""},
	} {
		_, err := New(tc.o, newWorld())
		if !errors.Is(err, tc.want) || (tc.text != "" && err.Error() != tc.text) {
			t.Errorf("New(%+v) = %v, want %v", tc.o, err, tc.want)
		}
	}
	if _, err := New(Options{Mode: ModePeriodic, Retention: 10}, newWorld()); err != nil {
		t.Errorf("10ns periodic: %v", err)
	}
}

// fakeClock lets a test see each wait the Runner starts and end it.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan wait
}

type wait struct {
	d  time.Duration
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.waits <- wait{d, ch}
	return ch
}

// recv receives the Runner's next wait; the Runner is parked until fire,
// so the test may change the Source in between.
func (c *fakeClock) recv(t *testing.T, want time.Duration) wait {
	t.Helper()
	select {
	case w := <-c.waits:
		if w.d != want {
			t.Fatalf("wait %v, want %v", w.d, want)
		}
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("runner did not wait")
	}
	return wait{}
}

// fire advances the clock by w's duration and ends it.
func (c *fakeClock) fire(w wait) {
	c.mu.Lock()
	c.now = c.now.Add(w.d)
	now := c.now
	c.mu.Unlock()
	w.ch <- now
}

// next lets the Runner's next wait pass.
func (c *fakeClock) next(t *testing.T, want time.Duration) {
	t.Helper()
	c.fire(c.recv(t, want))
}

// member is a Source safe for the Runner's goroutine.
type member struct {
	rev       atomic.Int64
	leader    atomic.Bool
	compacted chan int64
	block     chan struct{} // when non-nil, Compact waits on it or ctx
}

func (m *member) Rev() int64     { return m.rev.Add(1) }
func (m *member) IsLeader() bool { return m.leader.Load() }
func (m *member) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	if m.block != nil {
		select {
		case <-m.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	m.compacted <- r.Revision
	return &pb.CompactionResponse{}, nil
}

// The shell waits one sample interval per cycle, compacts as leader only,
// logs etcd's lines, and returns when its context ends.
func TestRunnerShell(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	clock := &fakeClock{now: time.Unix(0, 0), waits: make(chan wait)}
	src := &member{compacted: make(chan int64, 10)}
	src.leader.Store(true)
	r, err := New(Options{Logger: zap.New(core), Mode: ModePeriodic, Retention: time.Second, Clock: clock}, src)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()

	// Rev() counts its calls; the first sample is 1 and is compacted once
	// the retention (1s) has passed.
	for i := 0; i < 10; i++ {
		clock.next(t, 100*time.Millisecond)
	}
	if got := <-src.compacted; got != 1 {
		t.Fatalf("first compaction at %d, want 1", got)
	}
	w := clock.recv(t, 100*time.Millisecond) // parked: the cycle is done
	entries := logs.FilterMessage("completed auto periodic compaction").AllUntimed()
	if len(entries) != 1 {
		t.Fatalf("logs: %v", logs.AllUntimed())
	}
	f := entries[0].ContextMap()
	if f["revision"] != int64(1) || f["compact-period"] != time.Second || f["took"] != time.Duration(0) {
		t.Errorf("completed fields: %v", f)
	}
	if logs.FilterMessage("starting auto periodic compaction").Len() != 1 {
		t.Errorf("no starting line: %v", logs.AllUntimed())
	}

	// Not leader: a second's worth of cycles compacts nothing.
	src.leader.Store(false)
	clock.fire(w)
	for i := 1; i < 10; i++ {
		clock.next(t, 100*time.Millisecond)
	}
	w = clock.recv(t, 100*time.Millisecond) // parked: the cycles are done
	select {
	case got := <-src.compacted:
		t.Fatalf("compacted %d while not leader", got)
	default:
	}

	// Leader again, with Compact blocked: stopping ends the compaction
	// and the loop without a "failed" line.
	src.block = make(chan struct{})
	src.leader.Store(true)
	clock.fire(w)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if n := logs.FilterMessage("failed auto periodic compaction").Len(); n != 0 {
		t.Errorf("failed lines on stop: %d", n)
	}
}

// A failed compaction logs etcd's warn line with the retry interval.
func TestRunnerLogsFailure(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	w := newWorld()
	w.rev, w.fail = 100, errors.New("etcdserver: request timed out")
	r, err := New(Options{Logger: zap.New(core), Mode: ModeRevision, Retention: 10, Clock: w}, w)
	if err != nil {
		t.Fatal(err)
	}
	r.s.start(w.now)
	w.now = w.now.Add(RevisionInterval)
	r.step(context.Background())
	e := logs.FilterMessage("failed auto revision compaction").AllUntimed()
	if len(e) != 1 || e[0].Level != zapcore.WarnLevel {
		t.Fatalf("logs: %v", logs.AllUntimed())
	}
	f := e[0].ContextMap()
	if f["revision"] != int64(90) || f["revision-compaction-retention"] != int64(10) ||
		f["retry-interval"] != RevisionInterval || f["error"] != "etcdserver: request timed out" {
		t.Errorf("failed fields: %v", f)
	}
}
