package harness

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeWatchSet is a watchSet without a server: the test plays the watchers
// by adding to their counts.
func fakeWatchSet(watchers int, stall, every time.Duration) *watchSet {
	ws := &watchSet{closeAll: func() {}, cancel: func() {}, created: make(chan error, watchers),
		counts: make([]atomic.Int64, watchers), lastRecv: make([]atomic.Int64, watchers), stall: stall, every: every}
	ws.want.Store(1 << 62)
	return ws
}

type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// Delivery that stops short fails after the stall limit, not at the run's
// limit, with the events received and expected; progress is logged on the
// way.
func TestWatchWaitAllStallFailsFast(t *testing.T) {
	ws := fakeWatchSet(3, 300*time.Millisecond, 20*time.Millisecond)
	ws.setWant(5)
	for w := range ws.counts {
		ws.counts[w].Store(2)
	}
	ws.bad.Store(1)
	var log logLines
	start := time.Now()
	good, missing, errs, _, err := ws.waitAll(context.Background(), time.Minute, log.logf)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stall noticed after %s", d)
	}
	if err == nil || !strings.Contains(err.Error(), "stalled") || !strings.Contains(err.Error(), "7 of 15 events") {
		t.Errorf("err %v, want a stall with 7 of 15 events", err)
	}
	if good != 6 || missing != 9 || errs["event not delivered"] != 9 {
		t.Errorf("good %d, missing %d, errs %v", good, missing, errs)
	}
	if !strings.Contains(log.text(), "of 15 events") {
		t.Errorf("no progress logged: %q", log.text())
	}
}

// Slow but steady delivery is not a stall; it ends when every watcher has
// every event.
func TestWatchWaitAllSlowDeliveryCompletes(t *testing.T) {
	ws := fakeWatchSet(4, 300*time.Millisecond, 0)
	ws.setWant(10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 10; i++ {
			time.Sleep(100 * time.Millisecond) // > 1 s in all: longer than the stall limit
			for w := range ws.counts {
				ws.counts[w].Add(1)
			}
		}
	}()
	good, missing, errs, _, err := ws.waitAll(context.Background(), time.Minute, nil)
	<-done
	if err != nil || good != 40 || missing != 0 || len(errs) != 0 {
		t.Errorf("good %d, missing %d, errs %v, err %v", good, missing, errs, err)
	}
}

// The want set after the puts (the puts that succeeded) is what waitAll
// waits for, not the puts planned: puts that stopped early end the wait at
// once instead of at the run's limit.
func TestWatchWaitAllWantsOnlySucceededPuts(t *testing.T) {
	ws := fakeWatchSet(2, time.Minute, 0)
	ws.setWant(5000) // planned
	for w := range ws.counts {
		ws.counts[w].Store(3307)
	}
	ws.setWant(3307) // succeeded
	start := time.Now()
	good, missing, _, _, err := ws.waitAll(context.Background(), time.Minute, nil)
	if err != nil || good != 2*3307 || missing != 0 || time.Since(start) > 5*time.Second {
		t.Errorf("good %d, missing %d, err %v after %s", good, missing, err, time.Since(start))
	}
}

// A put load that stops completing requests fails after the stall limit;
// a slow one that keeps completing does not.
func TestPacedWaitProgress(t *testing.T) {
	p := &pacedRun{}
	for i := 0; i < 3; i++ {
		p.record(putSample{i: i})
	}
	var log logLines
	start := time.Now()
	err := p.waitProgress(context.Background(), 10, 300*time.Millisecond, time.Minute, 20*time.Millisecond, "puts", log.logf)
	if err == nil || !strings.Contains(err.Error(), "stalled") || time.Since(start) > 5*time.Second {
		t.Errorf("err %v after %s, want a stall", err, time.Since(start))
	}
	if !strings.Contains(log.text(), "of 10 puts completed") {
		t.Errorf("no progress logged: %q", log.text())
	}

	p = &pacedRun{}
	go func() {
		for i := 0; i < 10; i++ {
			time.Sleep(100 * time.Millisecond)
			p.record(putSample{i: i})
		}
	}()
	if err := p.waitProgress(context.Background(), 10, 300*time.Millisecond, time.Minute, 0, "puts", nil); err != nil {
		t.Errorf("slow puts: %v", err)
	}
	p = &pacedRun{}
	if err := p.waitProgress(context.Background(), 10, time.Minute, 200*time.Millisecond, 0, "puts", nil); err == nil ||
		!strings.Contains(err.Error(), "0 of 10 puts completed within") {
		t.Errorf("limit: %v", err)
	}
}
