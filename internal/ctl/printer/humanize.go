package printer

import (
	"fmt"
	"math"
)

// humanBytes writes a byte count in SI units the way etcdctl's humanize
// library does: "9 B", "20 kB", "2.1 GB" (one decimal below 10 units).
func humanBytes(n uint64) string {
	if n < 10 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	e := math.Floor(math.Log(float64(n)) / math.Log(1000))
	val := math.Floor(float64(n)/math.Pow(1000, e)*10+0.5) / 10
	if val < 10 {
		return fmt.Sprintf("%.1f %s", val, units[int(e)])
	}
	return fmt.Sprintf("%.0f %s", val, units[int(e)])
}

// HumanBytes is humanBytes for callers outside the printers (log fields).
func HumanBytes(n uint64) string { return humanBytes(n) }
