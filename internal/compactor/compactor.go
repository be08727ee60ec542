// Package compactor is etcd 3.6's automatic compaction
// (--auto-compaction-mode, --auto-compaction-retention).
//
// The decision of which revision to compact at which time is a synchronous,
// clock-free schedule (periodic.go, revision.go). Runner is the shell: one
// loop, run by the caller in its own goroutine, that feeds the schedule the
// time and the current revision, asks whether this member leads, and
// proposes the compaction through the Source.
package compactor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/mvcc"
)

// Modes of --auto-compaction-mode.
const (
	ModePeriodic = "periodic"
	ModeRevision = "revision"
)

// Sentinel errors.
var (
	// ErrUnknownMode is returned by New for a mode other than ModePeriodic
	// and ModeRevision.
	ErrUnknownMode = errors.New("unsupported compaction mode")
	// ErrRetentionTooShort is returned by New for a periodic retention
	// below 10ns (negative included): its sample interval,
	// min(retention, 1h)/10, would not be positive. etcd accepts such a
	// value and then spins (negative) or panics (0 < retention < 10ns).
	ErrRetentionTooShort = errors.New("retention too short for periodic compaction")
)

// ParseRetention parses --auto-compaction-retention as etcd does: a
// non-negative integer is hours in periodic mode and a revision count in
// revision mode (returned as a Duration of that many nanoseconds); anything
// else must be a Go duration (e.g. "30m", in revision mode taken as a
// revision count of that many nanoseconds, as etcd does). "" is "0".
// Errors read `error parsing CompactionRetention: time: invalid duration "x"`.
func ParseRetention(mode, retention string) (time.Duration, error) {
	if retention == "" {
		retention = "0"
	}
	if h, err := strconv.Atoi(retention); err == nil && h >= 0 {
		switch mode {
		case ModeRevision:
			return time.Duration(int64(h)), nil
		case ModePeriodic:
			return time.Duration(int64(h)) * time.Hour, nil
		case "":
			return 0, errors.New("--auto-compaction-mode is undefined")
		}
		return 0, nil
	}
	d, err := time.ParseDuration(retention)
	if err != nil {
		return 0, fmt.Errorf("error parsing CompactionRetention: %w", err)
	}
	return d, nil
}

// Source is what the Runner needs from the member. Its methods are called
// from the Runner's goroutine only, concurrently with the member's own work.
type Source interface {
	// Rev is the store's current revision.
	Rev() int64
	// IsLeader reports whether this member leads; only the leader
	// compacts, the others pause.
	IsLeader() bool
	// Compact proposes a compaction through raft and waits for it to be
	// applied. An error wrapping mvcc.ErrCompacted counts as success.
	Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error)
}

// Clock is the Runner's time source.
type Clock interface {
	Now() time.Time
	// After delivers once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options configure a Runner.
type Options struct {
	// Logger receives etcd's "starting/completed/failed auto <mode>
	// compaction" lines (nil: discarded).
	Logger *zap.Logger
	// Mode is ModePeriodic or ModeRevision.
	Mode string
	// Retention is ParseRetention's result: a duration in periodic mode
	// (at least 10ns), a revision count (its nanoseconds) in revision mode.
	// 0 means disabled: the caller does not build a Runner then.
	Retention time.Duration
	// Clock is the time source (nil: the real clock).
	Clock Clock
}

// Runner runs a schedule against a Source.
type Runner struct {
	lg    *zap.Logger
	clock Clock
	src   Source
	s     schedule
}

// New builds a Runner; it does nothing until Run.
func New(o Options, src Source) (*Runner, error) {
	var s schedule
	switch o.Mode {
	case ModePeriodic:
		p, err := newPeriodic(o.Retention)
		if err != nil {
			return nil, err
		}
		s = p
	case ModeRevision:
		s = newRevision(int64(o.Retention))
	default:
		return nil, fmt.Errorf("%w %s", ErrUnknownMode, o.Mode)
	}
	clock := o.Clock
	if clock == nil {
		clock = realClock{}
	}
	lg := o.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	return &Runner{lg: lg, clock: clock, src: src, s: s}, nil
}

// Run compacts on the schedule until ctx is done. While this member does
// not lead, the schedule keeps sampling but nothing is compacted (etcd's
// Pause); once it leads again a due compaction runs at the next interval
// (Resume). Errors other than "already compacted" are logged and the
// compaction is retried at a later interval. Call Run from one goroutine.
func (r *Runner) Run(ctx context.Context) {
	r.s.start(r.clock.Now())
	for {
		r.s.sample(r.src.Rev())
		select {
		case <-ctx.Done():
			return
		case <-r.clock.After(r.s.interval()):
		}
		if !r.step(ctx) {
			return
		}
	}
}

// step is the part of one cycle after the wait: if this member leads and
// the schedule has a revision due, compact it and log as etcd does. It
// returns false when ctx ended during the compaction.
func (r *Runner) step(ctx context.Context) bool {
	if !r.src.IsLeader() {
		return true
	}
	rev, ok := r.s.next(r.clock.Now(), r.src.Rev())
	if !ok {
		return true
	}
	msg := "auto " + r.s.mode() + " compaction"
	fields := append([]zap.Field{zap.Int64("revision", rev)}, r.s.fields()...)
	r.lg.Info("starting "+msg, fields...)
	began := r.clock.Now()
	_, err := r.src.Compact(ctx, &pb.CompactionRequest{Revision: rev})
	if ctx.Err() != nil {
		return false
	}
	succeeded := err == nil || errors.Is(err, mvcc.ErrCompacted)
	r.s.done(r.clock.Now(), rev, succeeded)
	if succeeded {
		r.lg.Info("completed "+msg, append(fields, zap.Duration("took", r.clock.Now().Sub(began)))...)
	} else {
		r.lg.Warn("failed "+msg, append(fields, zap.Duration("retry-interval", r.s.interval()), zap.Error(err))...)
	}
	return true
}
