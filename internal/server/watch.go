package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/watch"
)

// minWatchProgressInterval is etcd's floor for
// --watch-progress-notify-interval; a shorter one is raised with a warning.
const minWatchProgressInterval = 100 * time.Millisecond

// grpcOverheadBytes is the room above --max-request-bytes that a gRPC
// message may use (etcd's MaxRequestBytesWithOverhead), which is where a
// fragmenting watcher's responses are cut.
const grpcOverheadBytes = 512 * 1024

// onEvents feeds the watch hub; it is the mvcc store's OnEvents, called on
// the apply goroutine after each write transaction.
func (s *Server) onEvents(rev int64, evs []mvccpb.Event) {
	if s.watchHub != nil {
		s.watchHub.OnEvents(rev, evs)
	}
}

// initWatch starts the watch hub on the store and registers etcd's watch
// metrics.
func (s *Server) initWatch() error {
	cfg := watch.DefaultConfig()
	cfg.Logger = s.lg
	if d := s.cfg.WatchProgressNotifyInterval; d > 0 {
		if d < minWatchProgressInterval {
			s.lg.Warn("adjusting watch progress notify interval to minimum period",
				zap.Duration("min-watch-progress-notify-interval", minWatchProgressInterval))
			d = minWatchProgressInterval
		}
		cfg.ProgressInterval = d
	}
	if s.cfg.MaxRequestBytes > 0 {
		cfg.FragmentBytes = int(s.cfg.MaxRequestBytes) + grpcOverheadBytes
	}
	h, err := watch.NewHub(s.kv, cfg)
	if err != nil {
		return err
	}
	s.watchHub = h
	if reg := s.cfg.Registerer; reg != nil {
		gauge := func(name, help string, f func(watch.Stats) int64) prometheus.Collector {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd_debugging", Subsystem: "mvcc", Name: name, Help: help},
				func() float64 { return float64(f(h.Stats())) })
		}
		reg.MustRegister(
			gauge("watch_stream_total", "Total number of watch streams.", func(st watch.Stats) int64 { return st.Streams }),
			gauge("watcher_total", "Total number of watchers.", func(st watch.Stats) int64 { return st.Watchers }),
			gauge("slow_watcher_total", "Total number of unsynced slow watchers.", func(st watch.Stats) int64 { return st.Slow }),
			gauge("pending_events_total", "Total number of pending events to be sent.", func(st watch.Stats) int64 { return st.Pending }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "events_total",
				Help: "Total number of events sent by this member."}, func() float64 { return float64(h.Stats().EventsSent) }),
		)
	}
	return nil
}

// WatchHub is the hub the Watch service serves from.
func (s *Server) WatchHub() *watch.Hub { return s.watchHub }
