package harness

import (
	"errors"
	"fmt"
	"strings"
)

// A system may lack a feature a workload needs (cairn has no multi-member
// clusters, no Watch and no v2 API yet). Such a run is "not supported": a
// state of its own, distinct from a failure, that does not fail the
// workload or the exit status. Only specific signals mean it, so that it
// cannot hide a crash, a timeout or wrong data:
//
//   - a member exits during start-up and its log holds one of
//     notSupportedRefusals (cairn's refusal of a multi-member
//     --initial-cluster; a server that does not know --enable-v2);
//   - Watch answers with gRPC status Unimplemented (watchProbe);
//   - the v2 probe PUT gets 404, 405 or 501 without etcd's v2 JSON (v2Probe).
//
// Anything else is a failure, as before.

// notSupportedRefusals are the start-up refusals that mean "not supported",
// as they appear in a server's log.
var notSupportedRefusals = []string{
	"does not support multi-member clusters yet", // cairn, --initial-cluster with several members
	"flag provided but not defined: -enable-v2",  // etcd >= 3.6 (Go's flag package)
}

// refusalIn returns the refusal found in a server log, or "".
func refusalIn(log string) string {
	for _, r := range notSupportedRefusals {
		if strings.Contains(log, r) {
			return r
		}
	}
	return ""
}

// notSupportedError marks a run whose system lacks the workload's feature.
type notSupportedError struct{ reason string }

func (e *notSupportedError) Error() string { return "not supported: " + e.reason }

func notSupported(format string, args ...any) error {
	return &notSupportedError{reason: fmt.Sprintf(format, args...)}
}

// notSupportedReason returns the reason if err says "not supported".
func notSupportedReason(err error) (string, bool) {
	var ns *notSupportedError
	if errors.As(err, &ns) {
		return ns.reason, true
	}
	return "", false
}
