package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Feature gate names (--feature-gates).
const (
	GateAllAlpha                     = "AllAlpha"
	GateAllBeta                      = "AllBeta"
	GateCompactHashCheck             = "CompactHashCheck"
	GateInitialCorruptCheck          = "InitialCorruptCheck"
	GateLeaseCheckpoint              = "LeaseCheckpoint"
	GateLeaseCheckpointPersist       = "LeaseCheckpointPersist"
	GateSetMemberLocalAddr           = "SetMemberLocalAddr"
	GateStopGRPCServiceOnDefrag      = "StopGRPCServiceOnDefrag"
	GateTxnModeWriteWithSharedBuffer = "TxnModeWriteWithSharedBuffer"
)

type gateSpec struct {
	name    string
	stage   string // ALPHA or BETA
	def     bool
	oldFlag string // the --experimental-* bool that sets it, if any
}

// gateTable lists etcd 3.6.16's server feature gates, sorted by name.
var gateTable = []gateSpec{
	{GateAllAlpha, "ALPHA", false, ""},
	{GateAllBeta, "BETA", false, ""},
	{GateCompactHashCheck, "ALPHA", false, "experimental-compact-hash-check-enabled"},
	{GateInitialCorruptCheck, "ALPHA", false, "experimental-initial-corrupt-check"},
	{GateLeaseCheckpoint, "ALPHA", false, "experimental-enable-lease-checkpoint"},
	{GateLeaseCheckpointPersist, "ALPHA", false, "experimental-enable-lease-checkpoint-persist"},
	{GateSetMemberLocalAddr, "ALPHA", false, ""},
	{GateStopGRPCServiceOnDefrag, "ALPHA", false, "experimental-stop-grpc-service-on-defrag"},
	{GateTxnModeWriteWithSharedBuffer, "BETA", true, "experimental-txn-mode-write-with-shared-buffer"},
}

func lookupGate(name string) (gateSpec, bool) {
	for _, g := range gateTable {
		if g.name == name {
			return g, true
		}
	}
	return gateSpec{}, false
}

// GateOfExperimentalFlag returns the feature gate an --experimental-* bool
// flag sets, or "".
func GateOfExperimentalFlag(flagName string) string {
	for _, g := range gateTable {
		if g.oldFlag == flagName && flagName != "" {
			return g.name
		}
	}
	return ""
}

// FeatureGates holds the gates that were set, by name. A gate absent from the
// map has its default. Setting AllAlpha or AllBeta also sets every gate of
// that stage that was not set before it.
type FeatureGates map[string]bool

// Enabled reports whether the gate is on. It panics on an unknown name, a
// programming error.
func (g FeatureGates) Enabled(name string) bool {
	if v, ok := g[name]; ok {
		return v
	}
	spec, ok := lookupGate(name)
	if !ok {
		panic(fmt.Sprintf("config: unknown feature gate %q", name))
	}
	return spec.def
}

// String lists the set gates as sorted "Name=bool" pairs joined by commas.
func (g FeatureGates) String() string {
	pairs := make([]string, 0, len(g))
	for k, v := range g {
		pairs = append(pairs, fmt.Sprintf("%s=%t", k, v))
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

// parseGates parses "A=true,B=false" (empty items skipped, spaces trimmed).
func parseGates(value string) (map[string]bool, []string, error) {
	m := map[string]bool{}
	var order []string
	for _, s := range strings.Split(value, ",") {
		if s == "" {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok {
			return nil, nil, fmt.Errorf("missing bool value for %s", k)
		}
		v = strings.TrimSpace(v)
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid value of %s=%s, err: %w", k, v, err)
		}
		if _, dup := m[k]; !dup {
			order = append(order, k)
		}
		m[k] = b
	}
	return m, order, nil
}

// set applies "A=true,B=false" on top of the gates already set; nothing
// changes on error.
func (g *FeatureGates) set(value string) error {
	m, order, err := parseGates(value)
	if err != nil {
		return err
	}
	return g.setMap(m, order)
}

func (g *FeatureGates) setMap(m map[string]bool, order []string) error {
	next := FeatureGates{}
	for k, v := range *g {
		next[k] = v
	}
	for _, k := range order {
		v := m[k]
		if _, ok := lookupGate(k); !ok {
			return fmt.Errorf("unrecognized feature gate: %s", k)
		}
		next[k] = v
		stage := ""
		switch k {
		case GateAllAlpha:
			stage = "ALPHA"
		case GateAllBeta:
			stage = "BETA"
		}
		if stage == "" {
			continue
		}
		for _, spec := range gateTable {
			if _, done := next[spec.name]; !done && spec.stage == stage {
				next[spec.name] = v
			}
		}
	}
	*g = next
	return nil
}

// gatesHelp is the --feature-gates option list of the help text.
func gatesHelp() string {
	lines := make([]string, len(gateTable))
	for i, g := range gateTable {
		lines[i] = fmt.Sprintf("%s=true|false (%s - default=%t)", g.name, g.stage, g.def)
	}
	return strings.Join(lines, "\n")
}
