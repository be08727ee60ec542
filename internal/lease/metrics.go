package lease

import "github.com/prometheus/client_golang/prometheus"

// Metrics are etcd's lessor series (etcd_debugging_lease_*). A nil
// *Metrics counts nothing.
type Metrics struct {
	Granted prometheus.Counter
	Revoked prometheus.Counter
	Renewed prometheus.Counter
	TTLs    prometheus.Histogram
}

// NewMetrics builds the series; register them with Collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		Granted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd_debugging", Subsystem: "lease", Name: "granted_total",
			Help: "The total number of granted leases."}),
		Revoked: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd_debugging", Subsystem: "lease", Name: "revoked_total",
			Help: "The total number of revoked leases."}),
		Renewed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd_debugging", Subsystem: "lease", Name: "renewed_total",
			Help: "The number of renewed leases seen by the leader."}),
		TTLs: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd_debugging", Subsystem: "lease", Name: "ttl_total",
			Help: "Bucketed histogram of lease TTLs.",
			// 1 second to about 3 months, as etcd
			Buckets: prometheus.ExponentialBuckets(1, 2, 24)}),
	}
}

// Collectors lists the series for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Granted, m.Revoked, m.Renewed, m.TTLs}
}

func (m *Metrics) granted(ttl int64) {
	if m != nil {
		m.Granted.Inc()
		m.TTLs.Observe(float64(ttl))
	}
}

func (m *Metrics) revoked() {
	if m != nil {
		m.Revoked.Inc()
	}
}

func (m *Metrics) renewed() {
	if m != nil {
		m.Renewed.Inc()
	}
}
