package harness

import (
	"strings"
	"testing"
	"time"
)

func TestLogPhasesAndTimeline(t *testing.T) {
	ref := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	log := []byte(`not json
{"level":"info","ts":"2026-12-05T11:59:59.000000Z","msg":"sending database snapshot"}
{"level":"info","ts":"2026-12-05T12:00:01.500000Z","msg":"sending database snapshot"}
{"level":"info","ts":"2026-12-05T12:00:02.000000Z","msg":"sending database snapshot"}
{"level":"info","ts":"2026-12-05T12:00:03.250000Z","msg":"sent database snapshot","took":"3s","b-took":"1s"}
{"level":"info","ts":"2026-12-05T12:00:04.000000Z","msg":"something else"}
`)
	ev := logPhases(log, "leader", ref, catchupPhases)
	if len(ev) != 3 || ev[0].what != "sending database snapshot" || !ev[0].at.Equal(ref.Add(1500*time.Millisecond)) ||
		ev[2].what != "sent database snapshot (b-took=1s took=3s)" {
		t.Fatalf("phases = %+v, want the two sending lines after ref and the sent line with its durations", ev)
	}
	samples := []putSample{
		{start: ref.Add(2 * time.Second), lat: 900 * time.Millisecond},
		{start: ref.Add(time.Second), lat: 5 * time.Millisecond},
		{start: ref.Add(3 * time.Second), lat: time.Second, err: "timeout"},
		{start: ref.Add(4 * time.Second), lat: 40 * time.Millisecond},
	}
	slow := slowest(samples, 2)
	if len(slow) != 2 || slow[0].lat != 900*time.Millisecond || slow[1].lat != 40*time.Millisecond {
		t.Fatalf("slowest = %+v, want 900 ms then 40 ms (failed requests left out)", slow)
	}
	got := formatTimeline(ref, ev, map[string][]putSample{"put": slow})
	want := []string{
		"     +1.50s  leader: sending database snapshot",
		"     +2.00s  leader: sending database snapshot",
		"     +2.00s  slow put: 900 ms (ends +2.90s)",
		"     +3.25s  leader: sent database snapshot (b-took=1s took=3s)",
		"     +4.00s  slow put: 40 ms (ends +4.04s)",
	}
	if strings.Join(want, "\n")+"\n" != got {
		t.Fatalf("timeline:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestGCCyclesAndWarnings(t *testing.T) {
	log := []byte(`{"level":"info","ts":"2026-12-05T12:00:00.000000Z","msg":"Running"}
gc 1 @0.010s 1%: 0.010+0.5+0.010 ms clock, 0.02+0/0.1/0+0.02 ms cpu, 3->3->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P
gc 2 @2.000s 5%: 0.1+150+0.2 ms clock, 0.2+10/70/0+0.4 ms cpu, 300->310->150 MB, 320 MB goal, 0 MB stacks, 0 MB globals, 2 P
{"level":"warn","ts":"2026-12-05T12:00:02.050000Z","msg":"apply request took too long"}
{"level":"info","ts":"2026-12-05T12:00:02.060000Z","msg":"fine"}
{"level":"info","ts":"2026-12-05T12:00:10.000000Z","msg":"Running"}
gc 1 @0.500s 1%: 0.010+20+0.010 ms clock, 0.02+0/0.1/0+0.02 ms cpu, 3->3->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P
`)
	ref := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	cycles := gcCycles(log)
	if len(cycles) != 3 {
		t.Fatalf("cycles = %d, want 3", len(cycles))
	}
	if !cycles[1].start.Equal(ref.Add(2*time.Second)) || cycles[1].wall != 150300*time.Microsecond {
		t.Fatalf("cycle 2 = %v +%v, want @2s lasting 150.3ms", cycles[1].start.Sub(ref), cycles[1].wall)
	}
	if !cycles[2].start.Equal(ref.Add(10500 * time.Millisecond)) {
		t.Fatalf("restarted process's cycle at %v, want +10.5s", cycles[2].start.Sub(ref))
	}
	slow := []putSample{{start: ref.Add(2100 * time.Millisecond), lat: 100 * time.Millisecond}}
	ev := gcOverlapping(cycles, "leader", slow)
	if len(ev) != 1 || !strings.HasPrefix(ev[0].what, "gc 2 @2.000s") {
		t.Fatalf("overlapping = %+v, want gc 2 only", ev)
	}
	w := logWarnings(log, "leader", ref.Add(time.Second), ref.Add(3*time.Second), 10)
	if len(w) != 1 || w[0].what != "warn: apply request took too long" {
		t.Fatalf("warnings = %+v", w)
	}
}
