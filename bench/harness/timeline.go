package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// A timeline places a run's slowest requests next to the phases the
// servers logged, so a latency spike can be tied to what the cluster was
// doing at that moment (snapshot send, receive, install). Times are
// seconds from a reference instant (the member's restart).

// logEvent is one phase line found in a server log.
type logEvent struct {
	at   time.Time
	who  string // which member's log
	what string // the message
}

// logPhases returns the occurrences, at or after since, of each of msgs in
// log (JSON lines with an RFC 3339 "ts" and a "msg", as etcd and cairn both
// write them), at most perMsg of each, with the line's durations (fields
// named "took" or "...-took") appended. Other lines are skipped.
func logPhases(log []byte, who string, since time.Time, msgs []string) []logEvent {
	const perMsg = 3
	seen := map[string]int{}
	var out []logEvent
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var rec map[string]any
		if !bytes.HasPrefix(line, []byte("{")) || json.Unmarshal(line, &rec) != nil {
			continue
		}
		msg, _ := rec["msg"].(string)
		ts, _ := rec["ts"].(string)
		if seen[msg] >= perMsg || !slices.Contains(msgs, msg) {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || at.Before(since) {
			continue
		}
		seen[msg]++
		var took []string
		for k, v := range rec {
			if k == "took" || strings.HasSuffix(k, "-took") {
				took = append(took, fmt.Sprintf("%s=%v", k, v))
			}
		}
		slices.Sort(took)
		what := msg
		if len(took) > 0 {
			what += " (" + strings.Join(took, " ") + ")"
		}
		out = append(out, logEvent{at: at, who: who, what: what})
	}
	return out
}

// logWarnings returns the warn- and error-level lines of log that fall in
// [from, to], at most n of them: a stall often leaves one ("slow fdatasync",
// "apply request took too long", "failed to send out heartbeat on time").
func logWarnings(log []byte, who string, from, to time.Time, n int) []logEvent {
	var out []logEvent
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() && len(out) < n {
		line := sc.Bytes()
		var rec struct {
			Level string `json:"level"`
			TS    string `json:"ts"`
			Msg   string `json:"msg"`
		}
		if !bytes.HasPrefix(line, []byte("{")) || json.Unmarshal(line, &rec) != nil ||
			(rec.Level != "warn" && rec.Level != "error") {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, rec.TS)
		if err != nil || at.Before(from) || at.After(to) {
			continue
		}
		out = append(out, logEvent{at: at, who: who, what: rec.Level + ": " + rec.Msg})
	}
	return out
}

// gcCycle is one line of the Go runtime's GODEBUG=gctrace=1 output.
type gcCycle struct {
	start time.Time
	wall  time.Duration // stop-the-world phases plus concurrent mark
	line  string
}

// gcCycles parses the gctrace lines in log. The runtime stamps each cycle
// with seconds since the process started, taken here to be the time of the
// process's first "Running..." log line (cairn and etcd both log one at
// start; a few ms late at most). A server started without gctrace has none.
func gcCycles(log []byte) []gcCycle {
	var out []gcCycle
	var procStart time.Time
	started := false // a "Running" line seen since the last gc line
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "{") {
			var rec struct {
				TS  string `json:"ts"`
				Msg string `json:"msg"`
			}
			if started || json.Unmarshal([]byte(line), &rec) != nil || !strings.HasPrefix(rec.Msg, "Running") {
				continue
			}
			if at, err := time.Parse(time.RFC3339Nano, rec.TS); err == nil {
				procStart, started = at, true
			}
			continue
		}
		// gc 12 @3.456s 2%: 0.030+120+0.010 ms clock, ...
		var n int
		var at, a, b, c float64
		if _, err := fmt.Sscanf(line, "gc %d @%fs", &n, &at); err != nil || procStart.IsZero() {
			continue
		}
		started = false
		colon := strings.Index(line, ": ")
		if colon < 0 {
			continue
		}
		if _, err := fmt.Sscanf(line[colon+2:], "%f+%f+%f ms clock", &a, &b, &c); err != nil {
			continue
		}
		out = append(out, gcCycle{
			start: procStart.Add(time.Duration(at * float64(time.Second))),
			wall:  time.Duration(math.Round((a+b+c)*1000)) * time.Microsecond,
			line:  line,
		})
	}
	return out
}

// gcOverlapping returns, as events, the cycles that overlap any of the
// samples' lifetimes.
func gcOverlapping(cycles []gcCycle, who string, samples []putSample) []logEvent {
	var out []logEvent
	for _, g := range cycles {
		for _, s := range samples {
			if g.start.Before(s.start.Add(s.lat)) && g.start.Add(g.wall).After(s.start) {
				out = append(out, logEvent{at: g.start, who: who, what: g.line})
				break
			}
		}
	}
	return out
}

// slowest returns the n slowest successful samples, slowest first.
func slowest(samples []putSample, n int) []putSample {
	ok := make([]putSample, 0, len(samples))
	for _, s := range samples {
		if s.err == "" {
			ok = append(ok, s)
		}
	}
	slices.SortFunc(ok, func(a, b putSample) int { return int(b.lat - a.lat) })
	return ok[:min(n, len(ok))]
}

// formatTimeline renders events and the slowest requests of each kind in
// time order, as offsets from ref.
func formatTimeline(ref time.Time, events []logEvent, slow map[string][]putSample) string {
	type row struct {
		at   time.Time
		text string
	}
	var rows []row
	for _, e := range events {
		rows = append(rows, row{e.at, fmt.Sprintf("%s: %s", e.who, e.what)})
	}
	for kind, ss := range slow {
		for _, s := range ss {
			rows = append(rows, row{s.start, fmt.Sprintf("slow %s: %.0f ms (ends %+.2fs)",
				kind, s.lat.Seconds()*1000, s.start.Add(s.lat).Sub(ref).Seconds())})
		}
	}
	slices.SortStableFunc(rows, func(a, b row) int { return a.at.Compare(b.at) })
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "  %+8.2fs  %s\n", r.at.Sub(ref).Seconds(), r.text)
	}
	return b.String()
}
