//go:build !cairn_failpoints

package failpoint

// Enabled says whether this binary was built with the cairn_failpoints tag.
const Enabled = false

// On is always false in a normal build: no hook can be switched on.
func On(string) bool { return false }

// Crash does nothing in a normal build.
func Crash(string) {}

// Disk is "" in a normal build: no disk fault.
func Disk() string { return "" }

// Armed is false in a normal build.
func Armed() bool { return false }
