package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSharedDeadlineReusesWithinGrain(t *testing.T) {
	d := newSharedDeadline(10 * time.Second)
	defer d.stop()
	if d.grain != 50*time.Millisecond {
		t.Fatalf("grain = %v, want 50ms", d.grain)
	}
	t0 := time.Now()
	a := d.get(t0)
	if b := d.get(t0.Add(d.grain - time.Nanosecond)); b != a {
		t.Fatal("a call within the grain got a new context")
	}
	c := d.get(t0.Add(d.grain))
	if c == a {
		t.Fatal("a call one grain later reused the old context")
	}
	for _, tc := range []struct {
		ctx  context.Context
		want time.Time
	}{{a, t0.Add(10 * time.Second)}, {c, t0.Add(d.grain + 10*time.Second)}} {
		got, ok := tc.ctx.Deadline()
		if !ok || !got.Equal(tc.want) {
			t.Fatalf("deadline = %v (%v), want %v", got, ok, tc.want)
		}
	}
}

func TestSharedDeadlineExpires(t *testing.T) {
	d := newSharedDeadline(20 * time.Millisecond)
	defer d.stop()
	ctx := d.get(time.Now())
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("shared deadline never expired")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", ctx.Err())
	}
	if next := d.get(time.Now()); next.Err() != nil {
		t.Fatalf("a fresh context is already done: %v", next.Err())
	}
}

func TestSharedDeadlineStopCancels(t *testing.T) {
	d := newSharedDeadline(time.Hour)
	ctx := d.get(time.Now())
	d.stop()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("err = %v, want canceled", ctx.Err())
	}
}
