package harness

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v):
		return "—"
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func fmtStat(s Stat) string {
	if len(s.Values) == 0 {
		return "—"
	}
	return fmt.Sprintf("%s [%s–%s]", fmtNum(s.Median), fmtNum(s.Min), fmtNum(s.Max))
}

func (wr WorkloadResult) errorsOf(sys string) int {
	n := 0
	for _, rr := range wr.Runs {
		if rr.System != sys {
			continue
		}
		if rr.Measurement != nil {
			n += rr.Measurement.Errors
		}
		for _, p := range rr.Parts {
			if p.Measurement != nil {
				n += p.Measurement.Errors
			}
		}
	}
	return n
}

// Markdown renders the results: the floor, then one table per reference.
func (res *Results) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# cairnbench %s\n\n", res.Started.Format("2006-01-02 15:04:05 MST"))
	if res.Incomplete != "" {
		msg, _, _ := strings.Cut(res.Incomplete, "\n")
		fmt.Fprintf(&b, "**INCOMPLETE RUN:** %s\n\n", msg)
	}
	fmt.Fprintf(&b, "- command: `%s`\n", res.Command)
	fmt.Fprintf(&b, "- mode: %s, %d rounds per workload, servers alternate each round (%s); each run on a fresh server and data dir\n",
		res.Mode, res.Sizes.Rounds, res.order())
	fmt.Fprintf(&b, "- system under test: %s (`%s`)\n", res.SUT.Name, res.SUT.Version)
	for _, r := range res.Refs {
		fmt.Fprintf(&b, "- reference: %s (`%s`)\n", r.Name, r.Version)
	}
	fmt.Fprintf(&b, "- load generator: %s; txn, k8s-shape, paging, reads-under-puts, maintenance-under-load, leader-kill, watch and v2 workloads: cairnbench's own generator (same for both sides)\n", res.Tool)
	m := res.Machine
	fmt.Fprintf(&b, "- machine: %d CPUs (%s), %s RAM, Linux %s, %s; data dir %s\n",
		m.CPUs, m.CPUModel, m.MemTotal, m.Kernel, m.GoVersion, m.DataFS)
	fmt.Fprintf(&b, "- load average at start / end: %s / %s\n", m.LoadAvgStart, m.LoadAvgEnd)
	fmt.Fprintf(&b, "- duration: %s\n\n", res.Finished.Sub(res.Started).Round(1e9))
	b.WriteString("Cells are median [min–max] over rounds. The ratio is cairn/etcd computed per round, then its median " +
		"and [min–max]; for ↑ metrics above 1 is better for the system under test, for ↓ metrics below 1. " +
		"A workload with any failed run or failed request is marked FAILED and not averaged in. " +
		"\"not supported\" means the system lacks the workload's feature (it refused a multi-member cluster, Watch answered " +
		"Unimplemented, or it has no v2 API): not a failure, no numbers. The v2-* workloads run only against the v2 " +
		"reference (etcd 3.4 with --enable-v2).\n\n")

	for _, wr := range res.Workloads {
		if wr.Name != floorName {
			continue
		}
		if wr.Failed {
			fmt.Fprintf(&b, "**fsync floor: FAILED** (%s)\n\n", strings.Join(wr.Failures, "; "))
			continue
		}
		for _, mr := range wr.Metrics {
			fmt.Fprintf(&b, "- fsync floor, %s (%s): %s\n", mr.Label, mr.Unit, fmtStat(mr.BySystem[floorSystem]))
		}
		b.WriteString("\n")
	}

	for _, ref := range res.Refs {
		fmt.Fprintf(&b, "## %s vs %s\n\n", res.SUT.Name, ref.Name)
		fmt.Fprintf(&b, "| workload | metric | %s | %s | ratio %s/%s | ratio spread | failed requests (%s / %s) |\n",
			res.SUT.Name, ref.Name, res.SUT.Name, ref.Name, res.SUT.Name, ref.Name)
		b.WriteString("|---|---|---|---|---|---|---|\n")
		for _, wr := range res.Workloads {
			if wr.Name == floorName || !wr.ranOn(ref.Name) {
				continue
			}
			errs := fmt.Sprintf("%d / %d", wr.errorsOf(res.SUT.Name), wr.errorsOf(ref.Name))
			if wr.Failed {
				fmt.Fprintf(&b, "| %s | **FAILED** | %s | | | | %s |\n", wr.Name,
					mdEscape(strings.Join(wr.Failures, "; ")), errs)
				continue
			}
			cell := func(sys string, st Stat) string {
				if wr.notSupportedBy(sys) {
					return "not supported"
				}
				return fmtStat(st)
			}
			if len(wr.Metrics) == 0 {
				fmt.Fprintf(&b, "| %s | all | %s | %s | — | — | %s |\n", wr.Name, cell(res.SUT.Name, Stat{}),
					cell(ref.Name, Stat{}), errs)
				continue
			}
			for _, mr := range wr.Metrics {
				arrow := "↓"
				if mr.HigherBetter {
					arrow = "↑"
				}
				rs := mr.Ratios[ref.Name]
				ratio, spread := "—", "—"
				if len(rs.Values) > 0 {
					ratio, spread = fmtNum(rs.Median), fmtNum(rs.Min)+"–"+fmtNum(rs.Max)
				}
				fmt.Fprintf(&b, "| %s | %s (%s) %s | %s | %s | %s | %s | %s |\n", wr.Name, mr.Label, mr.Unit, arrow,
					cell(res.SUT.Name, mr.BySystem[res.SUT.Name]), cell(ref.Name, mr.BySystem[ref.Name]), ratio, spread, errs)
			}
		}
		b.WriteString("\n")
	}

	b.WriteString("## Workloads\n\n")
	for _, wr := range res.Workloads {
		fmt.Fprintf(&b, "- `%s`: %s\n", wr.Name, wr.Desc)
		for _, sys := range slices.Sorted(maps.Keys(wr.NotSupported)) {
			fmt.Fprintf(&b, "  - not supported by %s: %s\n", sys, mdEscape(wr.NotSupported[sys]))
		}
	}
	if len(res.Profiles) > 0 {
		b.WriteString("\n## Profiles\n\n")
		for _, p := range res.Profiles {
			fmt.Fprintf(&b, "- `%s` (`go tool pprof -top %s`)\n", p, p)
		}
	}
	if len(res.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range res.Notes {
			fmt.Fprintf(&b, "- %s\n", mdEscape(n))
		}
	}
	return b.String()
}

func (res *Results) order() string {
	names := []string{res.SUT.Name}
	v2 := ""
	for _, r := range res.Refs {
		if r.V2 {
			v2 = "; v2-* workloads: " + res.SUT.Name + " → " + r.Name
			continue
		}
		names = append(names, r.Name)
	}
	return strings.Join(names, " → ") + v2
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}
