package config

import (
	"fmt"
	"reflect"
)

// NotYetSupported lists the flags cairn accepts but does not act on yet.
// CheckSupported refuses to start when one of them is explicitly set to a
// value other than its default, so that no setting is silently ignored. The
// server owner removes names as features land.
//
// Not listed on purpose: v2-deprecation (deprecated in etcd too: it warns
// and the default is enforced) and initial-cluster-state=existing (the
// server decides, since it depends on the data dir). An --experimental-*
// alias counts as its new name; an --experimental-* bool that became a
// feature gate counts as feature-gates.
var NotYetSupported = []string{
	"client-cert-allowed-hostname", "cipher-suites",
	"cors", "host-whitelist", "auth-token",
	"enable-log-rotation", "log-rotation-config-json",
	"enable-distributed-tracing", "distributed-tracing-address", "distributed-tracing-service-name",
	"distributed-tracing-instance-id", "distributed-tracing-sampling-rate",
	"memory-mlock", "socket-reuse-port", "socket-reuse-address",
	"unsafe-no-fsync", "downgrade-check-time",
	"bootstrap-defrag-threshold-megabytes", "metrics",
}

// NotYetSupportedGates lists the feature gates cairn does not act on yet:
// CheckSupported refuses a gate of this list set, by --feature-gates or by
// its old --experimental-* bool, to a value other than its default.
// InitialCorruptCheck, CompactHashCheck, LeaseCheckpoint and
// LeaseCheckpointPersist are served.
var NotYetSupportedGates = []string{
	GateSetMemberLocalAddr, GateStopGRPCServiceOnDefrag, GateTxnModeWriteWithSharedBuffer,
}

// UnsupportedError names an explicitly set flag cairn does not act on yet.
type UnsupportedError struct{ Flag string }

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("cairn does not support --%s yet", e.Flag)
}

// Is makes errors.Is(err, ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// CheckSupported returns an *UnsupportedError (errors.Is ErrUnsupported), with the text
// "cairn does not support --<flag> yet", for the first flag of notYet (or
// its --experimental-* form) that c has explicitly set to a non-default
// value. c is a Config from Load.
func CheckSupported(c *Config, notYet []string) error {
	if err := checkGates(c); err != nil {
		return err
	}
	def := Default()
	for _, name := range notYet {
		for _, given := range aliasesOf(name) {
			if !c.ExplicitlySet(given) {
				continue
			}
			spec, ok := lookupSpec(given)
			if !ok {
				continue
			}
			if !reflect.DeepEqual(reflect.ValueOf(spec.field(c)).Elem().Interface(), reflect.ValueOf(spec.field(def)).Elem().Interface()) {
				return &UnsupportedError{Flag: given}
			}
		}
	}
	return nil
}

// checkGates refuses a gate of NotYetSupportedGates turned away from its
// default, naming the flag that did it.
func checkGates(c *Config) error {
	for _, name := range NotYetSupportedGates {
		g, _ := lookupGate(name)
		v := c.FeatureEnabled(name)
		if v == g.def {
			continue
		}
		if g.oldFlag != "" && c.ExplicitlySet(g.oldFlag) {
			return &UnsupportedError{Flag: g.oldFlag}
		}
		return &UnsupportedError{Flag: fmt.Sprintf("feature-gates=%s=%v", name, v)}
	}
	return nil
}

// aliasesOf returns name and the old flags that set the same thing.
func aliasesOf(name string) []string {
	out := []string{name}
	for _, r := range experimentalRenames {
		if r[1] == name {
			out = append(out, r[0])
		}
	}
	if name == "feature-gates" {
		for _, g := range gateTable {
			if g.oldFlag != "" {
				out = append(out, g.oldFlag)
			}
		}
	}
	return out
}
