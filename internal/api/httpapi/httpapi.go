// Package httpapi serves the HTTP endpoints that share the client port with
// gRPC: /version, /health, /livez, /readyz, /metrics and /debug/vars, with
// etcd's paths, bodies and status codes; and the smaller set of the
// --listen-metrics-urls ports.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.uber.org/zap"
)

// Member is what the HTTP endpoints need of a running member.
type Member interface {
	Leader() uint64
	Alarms() []*pb.AlarmMember
	// Range serves a health probe read.
	Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error)
	ClusterVersion() string
	// RaftStatus is raft's view of the member (/debug/vars "raft.status");
	// false once the member has stopped.
	RaftStatus() (raft.Status, bool)
	// IsLearner reports whether the member is a learner (/readyz fails its
	// non_learner check).
	IsLearner() bool
}

// Versions are reported by /version.
type Versions struct {
	Server, Storage string
}

// Options configure the handler.
type Options struct {
	Logger   *zap.Logger
	Gatherer prometheus.Gatherer
	Versions Versions
	// ProbeTimeout bounds the read a health check performs.
	ProbeTimeout time.Duration
	// EnablePprof serves Go's profiles under /debug/pprof/ (--enable-pprof).
	EnablePprof bool
}

// NewHandler returns the HTTP handler for the client port (and
// --listen-client-http-urls).
func NewHandler(m Member, o Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/debug/vars", debugVars(m))
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		cv := m.ClusterVersion()
		if cv == "" {
			cv = "not_decided"
		}
		b, _ := json.Marshal(struct {
			Server  string `json:"etcdserver"`
			Cluster string `json:"etcdcluster"`
			Storage string `json:"storage"`
		}{o.Versions.Server, cv, o.Versions.Storage})
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
	handleHealth(mux, m, o)
	if o.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	handleMetrics(mux, o)
	return mux
}

// NewMetricsHandler returns the handler of the --listen-metrics-urls ports:
// /metrics and the health endpoints only, as etcd serves there (no
// /version, no /debug/vars, no profiles).
func NewMetricsHandler(m Member, o Options) http.Handler {
	mux := http.NewServeMux()
	handleMetrics(mux, o)
	handleHealth(mux, m, o)
	return mux
}

func handleMetrics(mux *http.ServeMux, o Options) {
	if o.Gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	}
}

func handleHealth(mux *http.ServeMux, m Member, o Options) {
	h := &health{m: m, lg: o.Logger, timeout: o.ProbeTimeout}
	mux.HandleFunc("/health", h.serveHealth)
	h.handleProbes(mux, "/livez", h.probeChecks(false))
	h.handleProbes(mux, "/readyz", h.probeChecks(true))
}

type health struct {
	m       Member
	lg      *zap.Logger
	timeout time.Duration
}

type healthBody struct {
	Health string `json:"health"`
	Reason string `json:"reason"`
}

// serveHealth answers etcd's /health: 200 {"health":"true","reason":""} or
// 503 with the reason (an active alarm, no leader, or a failed read).
func (h *health) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	excluded := map[string]bool{}
	for _, a := range q["exclude"] {
		excluded[a] = true
	}
	body := healthBody{Health: "true"}
	if reason := h.check(r.Context(), excluded, q.Get("serializable") == "true"); reason != "" {
		body = healthBody{Health: "false", Reason: reason}
		h.lg.Warn("serving /health false", zap.String("reason", reason))
	}
	b, _ := json.Marshal(body)
	if body.Health != "true" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	w.Write(b)
}

// check returns "" when healthy, else etcd's reason text.
func (h *health) check(ctx context.Context, excluded map[string]bool, serializable bool) string {
	for _, a := range h.m.Alarms() {
		name := a.Alarm.String()
		if !excluded[name] {
			return "ALARM " + name
		}
	}
	if h.m.Leader() == 0 {
		return "RAFT NO LEADER"
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	if _, err := h.m.Range(ctx, &pb.RangeRequest{Key: []byte("health"), Serializable: serializable}); err != nil {
		return "QGET ERROR:" + err.Error()
	}
	return ""
}

// probeCheck is one named check of /livez or /readyz.
type probeCheck struct {
	name string
	run  func(context.Context) error
}

// probeChecks are etcd's checks of /livez (ready false) or /readyz.
func (h *health) probeChecks(ready bool) []probeCheck {
	read := func(serializable bool) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := h.m.Range(ctx, &pb.RangeRequest{Key: []byte("health"), KeysOnly: true, Limit: 1, Serializable: serializable})
			return err
		}
	}
	if !ready {
		return []probeCheck{{"serializable_read", read(true)}}
	}
	return []probeCheck{
		{"data_corruption", func(context.Context) error {
			for _, a := range h.m.Alarms() {
				if a.Alarm == pb.AlarmType_CORRUPT {
					return fmt.Errorf("alarm activated: %s", a.Alarm)
				}
			}
			return nil
		}},
		{"serializable_read", read(true)},
		{"linearizable_read", read(false)},
		{"non_learner", func(context.Context) error {
			if h.m.IsLearner() {
				return errors.New("not supported for learner")
			}
			return nil
		}},
	}
}

// handleProbes serves root (/livez or /readyz) running all checks but those
// named by ?exclude=, and root/<check> running one.
func (h *health) handleProbes(mux *http.ServeMux, root string, checks []probeCheck) {
	mux.HandleFunc(root, h.serveProbe(checks, true))
	for _, c := range checks {
		mux.HandleFunc(root+"/"+c.name, h.serveProbe([]probeCheck{c}, false))
	}
}

// serveProbe answers a probe as etcd does: "ok\n", preceded by a
// "[+]<check> ok" line per check with ?verbose; on failure 503 with every
// check's line ("[-]<check> failed: <error>") whatever the query.
func (h *health) serveProbe(checks []probeCheck, root bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		run := checks
		if root {
			run = h.withoutExcluded(checks, r.URL.Query()["exclude"])
		}
		ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
		defer cancel()
		var sb strings.Builder
		failed := false
		for _, c := range run {
			if err := c.run(ctx); err != nil {
				failed = true
				fmt.Fprintf(&sb, "[-]%s failed: %v\n", c.name, err)
				continue
			}
			fmt.Fprintf(&sb, "[+]%s ok\n", c.name)
		}
		if failed {
			http.Error(w, sb.String(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if _, verbose := r.URL.Query()["verbose"]; verbose {
			fmt.Fprint(w, sb.String())
		}
		fmt.Fprint(w, "ok\n")
	}
}

// withoutExcluded drops the checks named in excluded; names that are no
// check are logged, not refused (as etcd, for compatibility).
func (h *health) withoutExcluded(checks []probeCheck, excluded []string) []probeCheck {
	if len(excluded) == 0 {
		return checks
	}
	ex := map[string]bool{}
	for _, e := range excluded {
		ex[e] = true
	}
	var out []probeCheck
	for _, c := range checks {
		if ex[c.name] {
			delete(ex, c.name)
			continue
		}
		out = append(out, c)
	}
	if len(ex) > 0 {
		var missing []string
		for name := range ex {
			missing = append(missing, fmt.Sprintf("%q", name))
		}
		sort.Strings(missing)
		h.lg.Warn("some health checks cannot be excluded", zap.String("missing-health-checks", strings.Join(missing, ",")))
	}
	return out
}
