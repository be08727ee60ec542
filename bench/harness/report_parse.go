package harness

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Measurement is the outcome of one load run, from etcd's benchmark tool or
// from the harness's own generator. Latencies are in seconds.
type Measurement struct {
	Succeeded   int                `json:"succeeded"`
	Errors      int                `json:"errors"`
	ErrorKinds  map[string]int     `json:"error_kinds,omitempty"`
	TotalSecs   float64            `json:"total_secs"`
	RPS         float64            `json:"rps"`
	Average     float64            `json:"average_secs"`
	Slowest     float64            `json:"slowest_secs"`
	Fastest     float64            `json:"fastest_secs"`
	Stddev      float64            `json:"stddev_secs"`
	Percentiles map[string]float64 `json:"percentiles_secs,omitempty"` // "50", "99", ...
}

var (
	reSummary = regexp.MustCompile(`^\s*(Total|Slowest|Fastest|Average|Stddev):\s*(\S+) secs\.$`)
	reRPS     = regexp.MustCompile(`^\s*Requests/sec:\s*(\S+)$`)
	reHist    = regexp.MustCompile(`^\s*(\S+) \[(\d+)\]\s*\|`)
	rePctl    = regexp.MustCompile(`^\s*([\d.]+)% in (\S+) secs\.$`)
	reErr     = regexp.MustCompile(`^\s*\[(\d+)\]\s*(.*)$`)
)

// ParseBenchmarkOutput parses the report that etcd's tools/benchmark prints
// on stdout (pkg/report: Summary, Response time histogram, Latency
// distribution, Error distribution). Successful requests are counted from the
// histogram, failed ones from the error distribution.
func ParseBenchmarkOutput(out string) (Measurement, error) {
	var m Measurement
	section := ""
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \r")
		switch strings.TrimSpace(line) {
		case "Summary:":
			section = "summary"
			continue
		case "Response time histogram:":
			section = "hist"
			continue
		case "Latency distribution:":
			section = "pctl"
			continue
		case "Error distribution:":
			section = "err"
			seen["err"] = true
			continue
		case "":
			continue
		}
		switch section {
		case "summary":
			if g := reSummary.FindStringSubmatch(line); g != nil {
				v, err := parseFloat(g[2])
				if err != nil {
					return m, fmt.Errorf("summary %s: %w", g[1], err)
				}
				seen[g[1]] = true
				switch g[1] {
				case "Total":
					m.TotalSecs = v
				case "Slowest":
					m.Slowest = v
				case "Fastest":
					m.Fastest = v
				case "Average":
					m.Average = v
				case "Stddev":
					m.Stddev = v
				}
			} else if g := reRPS.FindStringSubmatch(line); g != nil {
				v, err := parseFloat(g[1])
				if err != nil {
					return m, fmt.Errorf("requests/sec: %w", err)
				}
				m.RPS = v
				seen["RPS"] = true
			}
		case "hist":
			if g := reHist.FindStringSubmatch(line); g != nil {
				n, _ := strconv.Atoi(g[2])
				m.Succeeded += n
				seen["hist"] = true
			}
		case "pctl":
			if g := rePctl.FindStringSubmatch(line); g != nil {
				v, err := parseFloat(g[2])
				if err != nil {
					return m, fmt.Errorf("percentile %s: %w", g[1], err)
				}
				if m.Percentiles == nil {
					m.Percentiles = map[string]float64{}
				}
				m.Percentiles[g[1]] = v
			}
		case "err":
			if g := reErr.FindStringSubmatch(line); g != nil {
				n, _ := strconv.Atoi(g[1])
				if m.ErrorKinds == nil {
					m.ErrorKinds = map[string]int{}
				}
				m.ErrorKinds[g[2]] += n
				m.Errors += n
			}
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if seen["Total"] {
		for _, k := range []string{"Slowest", "Fastest", "Average", "Stddev", "RPS", "hist"} {
			if !seen[k] {
				return m, fmt.Errorf("benchmark output: summary without %s", k)
			}
		}
		// pkg/report prints the p-th percentile only once more than p% of
		// the requests lie below it: p99 needs at least 100 requests.
		if _, ok := m.Percentiles["50"]; !ok {
			return m, errors.New("benchmark output: no latency distribution")
		}
		if _, ok := m.Percentiles["99"]; !ok && m.Succeeded >= 101 {
			return m, errors.New("benchmark output: no 99th percentile")
		}
		return m, nil
	}
	if seen["err"] && m.Errors > 0 {
		return m, nil // every request failed
	}
	return m, errors.New("benchmark output: no Summary and no Error distribution")
}

func parseFloat(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("not finite: %s", s)
	}
	return v, nil
}

// summarize builds a Measurement from raw latencies, using the same
// definitions as etcd's pkg/report so both sources compare.
func summarize(lats []float64, errKinds map[string]int, total time.Duration) Measurement {
	m := Measurement{Succeeded: len(lats), TotalSecs: total.Seconds()}
	for k, n := range errKinds {
		if m.ErrorKinds == nil {
			m.ErrorKinds = map[string]int{}
		}
		m.ErrorKinds[k] = n
		m.Errors += n
	}
	if len(lats) == 0 {
		return m
	}
	s := slices.Clone(lats)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	m.Average = sum / float64(len(s))
	var ss float64
	for _, v := range s {
		ss += (v - m.Average) * (v - m.Average)
	}
	m.Stddev = math.Sqrt(ss / float64(len(s)))
	m.Fastest, m.Slowest = s[0], s[len(s)-1]
	if total > 0 {
		m.RPS = float64(len(s)) / total.Seconds()
	}
	// Percentiles as pkg/report defines them: the first latency with at
	// least p% of the requests before it.
	m.Percentiles = map[string]float64{}
	pctls := []float64{10, 25, 50, 75, 90, 95, 99, 99.9}
	j := 0
	for i := 0; i < len(s) && j < len(pctls); i++ {
		if float64(i)*100/float64(len(s)) >= pctls[j] {
			m.Percentiles[strconv.FormatFloat(pctls[j], 'f', -1, 64)] = s[i]
			j++
		}
	}
	return m
}
