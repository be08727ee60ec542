// Package httpapi serves the HTTP endpoints that share the client port with
// gRPC: /version, /health, /livez, /readyz and /metrics, with etcd's paths,
// bodies and status codes.
package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
)

// Member is what the HTTP endpoints need of a running member.
type Member interface {
	Leader() uint64
	Alarms() []*pb.AlarmMember
	// Range serves a health probe read.
	Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error)
	ClusterVersion() string
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

// NewHandler returns the HTTP handler for the client port.
func NewHandler(m Member, o Options) http.Handler {
	mux := http.NewServeMux()
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
	h := &health{m: m, lg: o.Logger, timeout: o.ProbeTimeout}
	mux.HandleFunc("/health", h.serveHealth)
	mux.HandleFunc("/livez", h.serveProbe(false))
	mux.HandleFunc("/readyz", h.serveProbe(true))
	if o.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if o.Gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	}
	return mux
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

// serveProbe answers /livez and /readyz: "ok" or "failed", with per-check
// lines when ?verbose is given.
func (h *health) serveProbe(ready bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		type check struct {
			name string
			run  func(context.Context) error
		}
		checks := []check{{"serializable_read", func(ctx context.Context) error {
			_, err := h.m.Range(ctx, &pb.RangeRequest{Key: []byte("health"), Serializable: true})
			return err
		}}}
		if ready {
			checks = append([]check{{"data_corruption", func(context.Context) error {
				for _, a := range h.m.Alarms() {
					if a.Alarm == pb.AlarmType_CORRUPT {
						return fmt.Errorf("alarm activated: %s", a.Alarm)
					}
				}
				return nil
			}}}, checks...)
			checks = append(checks, check{"linearizable_read", func(ctx context.Context) error {
				_, err := h.m.Range(ctx, &pb.RangeRequest{Key: []byte("health")})
				return err
			}})
		}
		excluded := map[string]bool{}
		for _, e := range r.URL.Query()["exclude"] {
			excluded[e] = true
		}
		ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
		defer cancel()
		var sb strings.Builder
		failed := false
		for _, c := range checks {
			if excluded[c.name] {
				fmt.Fprintf(&sb, "[+]%s excluded: ok\n", c.name)
				continue
			}
			if err := c.run(ctx); err != nil {
				failed = true
				fmt.Fprintf(&sb, "[-]%s failed: %v\n", c.name, err)
				continue
			}
			fmt.Fprintf(&sb, "[+]%s ok\n", c.name)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if failed {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		if _, verbose := r.URL.Query()["verbose"]; verbose {
			sb.WriteString(map[bool]string{true: "failed", false: "ok"}[failed])
			w.Write([]byte(sb.String()))
			return
		}
		w.Write([]byte(map[bool]string{true: "failed", false: "ok"}[failed]))
	}
}
