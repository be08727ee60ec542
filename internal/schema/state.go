package schema

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ReadAuthEnabled reports whether auth/authEnabled is set (etcd writes one
// byte, 1 when enabled).
func ReadAuthEnabled(r Reader) bool {
	v, ok := r.Get(Auth, AuthEnabledKey)
	return ok && len(v) == 1 && v[0] == 1
}

// CountLeases returns the number of records in the lease bucket.
func CountLeases(r Reader) int {
	n := 0
	r.Range(Lease, nil, nil, 0, func(_, _ []byte) bool {
		n++
		return true
	})
	return n
}

// Downgrade is cluster/downgrade, etcd's record of a cluster downgrade in
// progress.
type Downgrade struct {
	TargetVersion string `json:"target-version"`
	Enabled       bool   `json:"enabled"`
}

// ReadDowngrade returns cluster/downgrade (the zero value when absent).
func ReadDowngrade(r Reader) (Downgrade, error) {
	var d Downgrade
	v, ok := r.Get(Cluster, ClusterDowngradeKey)
	if !ok {
		return d, nil
	}
	if err := json.Unmarshal(v, &d); err != nil {
		return d, fmt.Errorf("cluster/downgrade %q: %w", v, ErrCorrupt)
	}
	return d, nil
}

// NewerStorageVersion reports whether v, a meta/storageVersion value
// ("major.minor.patch"), is above the storage version cairn writes (3.6).
// Values that do not parse are not newer: etcd before 3.6 wrote none.
func NewerStorageVersion(v string) bool {
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > 3 || major == 3 && minor > 6
}
