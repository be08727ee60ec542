// Package launch runs a cairn member as a process: it reads the operator's
// configuration (flags, ETCD_* variables, config file), builds the server,
// binds the client and peer listeners, serves until a signal or a fatal
// error, and exits with etcd's exit codes.
package launch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/api/gateway"
	"github.com/cairnkv/cairn/internal/api/httpapi"
	"github.com/cairnkv/cairn/internal/api/v2http"
	"github.com/cairnkv/cairn/internal/api/v3rpc"
	"github.com/cairnkv/cairn/internal/compactor"
	"github.com/cairnkv/cairn/internal/config"
	"github.com/cairnkv/cairn/internal/discovery"
	"github.com/cairnkv/cairn/internal/gctune"
	"github.com/cairnkv/cairn/internal/server"
)

// Main runs a member with the given command line (args[0] is the program)
// and environment, and returns the process exit code. A signal that stops
// the member is re-raised, so the process dies of it as etcd's does.
func Main(args, environ []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(args, environ, stdout, stderr)
	if err != nil {
		var ee *config.ExitError
		if errors.As(err, &ee) {
			if !ee.Printed && len(ee.Logs) > 0 {
				boot, _ := config.BootstrapLogger()
				config.WriteLogs(boot, ee.Logger, ee.Logs)
			}
			return ee.Code
		}
		fmt.Fprintln(stderr, err)
		return 1
	}
	lg, err := config.BuildLogger(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer lg.Sync()
	boot, _ := config.BootstrapLogger()
	config.WriteLogs(boot, lg, cfg.ParseLogs())
	if addr := discovery.UseTestDNSServer(environ); addr != "" {
		lg.Warn("every name lookup goes to the test DNS server", zap.String("variable", discovery.TestDNSServerEnv), zap.String("address", addr))
	}

	if !hasEnv(environ, "GOGC") {
		// The operator's GOGC wins; otherwise give a small heap headroom.
		gt := gctune.Start(gctune.DefaultCap, gctune.DefaultWindow)
		defer gt.Stop()
	}

	if err := checkSupported(cfg); err != nil {
		lg.Error("cairn cannot start with this configuration", zap.Error(err))
		return 1
	}
	scfg, err := serverConfig(cfg, lg)
	if err != nil {
		lg.Error("discovery failed", zap.Error(err))
		return 1
	}
	m, err := start(lg, cfg, scfg)
	if err != nil {
		var sce *selfCertError
		if errors.As(err, &sce) {
			lg.Error("failed to get client self-signed certs", zap.Error(sce.err))
			return 1
		}
		if logDiscoveryError(lg, cfg, err) {
			return 1
		}
		lg.Error("discovery failed", zap.Error(err))
		return 1
	}

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	select {
	case sig := <-sigc:
		lg.Info("received signal; shutting down", zap.String("signal", sig.String()))
		m.stopGracefully()
		signal.Reset(sig)
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			p.Signal(sig)
		}
		// The default action of the re-raised signal ends the process; if
		// it does not within a moment, exit with the shell's code for it.
		time.Sleep(time.Second)
		return 128 + int(sig.(syscall.Signal))
	case err := <-m.errc:
		if errors.Is(err, server.ErrMemberRemoved) {
			return m.stopRemoved(err)
		}
		lg.Error("member stopped on a fatal error", zap.Error(err))
		m.stop()
		return 1
	}
}

// hasEnv reports whether environ sets name (even to the empty string).
func hasEnv(environ []string, name string) bool {
	for _, kv := range environ {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

// checkSupported refuses settings cairn does not act on yet.
func checkSupported(cfg *config.Config) error {
	if err := config.CheckSupported(cfg, config.NotYetSupported); err != nil {
		return err
	}
	return nil
}

// serverConfig translates the operator's configuration.
func serverConfig(cfg *config.Config, lg *zap.Logger) (server.Config, error) {
	ic, err := types.NewURLsMap(cfg.InitialCluster)
	if err != nil {
		return server.Config{}, fmt.Errorf("error setting up initial cluster: %w", err)
	}
	initial := map[string][]string{}
	for name, urls := range ic {
		initial[name] = urls.StringSlice()
	}
	retention, err := compactor.ParseRetention(cfg.AutoCompactionMode, cfg.AutoCompactionRetention)
	if err != nil {
		return server.Config{}, err
	}
	scfg := server.Config{
		Logger:                      lg,
		Name:                        cfg.Name,
		DataDir:                     cfg.DataDir,
		WALDir:                      cfg.WALDir,
		SnapshotCount:               cfg.SnapshotCount,
		SnapshotCatchUpEntries:      cfg.SnapshotCatchUpEntries,
		MaxSnapFiles:                cfg.MaxSnapshots,
		MaxWALFiles:                 cfg.MaxWALs,
		TickMs:                      cfg.HeartbeatMs,
		ElectionTicks:               cfg.ElectionTicks(),
		InitialElectionTickAdvance:  cfg.InitialElectionTickAdvance,
		PreVote:                     cfg.PreVote,
		InitialCluster:              initial,
		InitialClusterToken:         cfg.InitialClusterToken,
		NewCluster:                  cfg.IsNewCluster(),
		PeerURLs:                    urlStrings(cfg.InitialAdvertisePeerURLs),
		ClientURLs:                  urlStrings(cfg.AdvertiseClientURLs),
		QuotaBackendBytes:           cfg.QuotaBackendBytes,
		BackendBatchInterval:        cfg.BackendBatchInterval,
		BackendBatchLimit:           cfg.BackendBatchLimit,
		BackendFreelistType:         cfg.BackendFreelistType,
		MaxTxnOps:                   cfg.MaxTxnOps,
		MaxRequestBytes:             cfg.MaxRequestBytes,
		CompactionBatchLimit:        cfg.CompactionBatchLimit,
		CompactionSleepInterval:     cfg.CompactionSleepInterval,
		AutoCompactionMode:          cfg.AutoCompactionMode,
		AutoCompactionRetention:     retention,
		UnsafeNoFsync:               cfg.UnsafeNoFsync,
		InitialCorruptCheck:         cfg.FeatureEnabled(config.GateInitialCorruptCheck),
		CorruptCheckTime:            cfg.CorruptCheckTime,
		CompactHashCheck:            cfg.FeatureEnabled(config.GateCompactHashCheck),
		CompactHashCheckTime:        cfg.CompactHashCheckTime,
		LeaseCheckpoint:             cfg.FeatureEnabled(config.GateLeaseCheckpoint),
		LeaseCheckpointPersist:      cfg.FeatureEnabled(config.GateLeaseCheckpointPersist),
		ForceNewCluster:             cfg.ForceNewCluster,
		StrictReconfigCheck:         cfg.StrictReconfigCheck,
		MaxLearners:                 cfg.MaxLearners,
		WatchProgressNotifyInterval: cfg.WatchProgressNotifyInterval,
	}
	setDiscovery(lg, cfg, &scfg)
	return scfg, nil
}

func urlStrings(us []url.URL) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.String()
	}
	sort.Strings(out)
	return out
}

// member is a started server with its listeners.
type member struct {
	lg      *zap.Logger
	srv     *server.Server
	clients []*clientListener
	peers   []*http.Server
	gw      *gateway.Gateway // nil with --enable-grpc-gateway=false
	conc    *concurrencyServices
	errc    chan error
}

func start(lg *zap.Logger, cfg *config.Config, scfg server.Config) (*member, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	scfg.Registerer = reg

	m := &member{lg: lg, errc: make(chan error, 8)}
	// Bind every listener before touching the data dir (except for
	// --auto-tls's certificate, written where etcd writes it: after the peer
	// listeners, before the client ones), so a taken port fails fast and
	// leaves little behind.
	peerTLS, err := peerTLSInfo(lg, cfg)
	if err != nil {
		return nil, err
	}
	if scfg.PeerTLS, err = peerClientTLS(peerTLS); err != nil {
		return nil, err
	}
	peerLs, err := listenPeers(lg, cfg.ListenPeerURLs, peerTLS)
	if err != nil {
		return nil, err
	}
	clientTLS, err := clientTLSInfo(lg, cfg)
	if err != nil {
		m.closeListeners(peerLs, nil)
		return nil, err
	}
	m.clients, err = groupClientURLs(lg, cfg.ListenClientURLs, cfg.ListenClientHTTPURLs)
	if err != nil {
		m.closeListeners(peerLs, nil)
		return nil, err
	}
	for _, cl := range m.clients {
		for _, u := range cl.urls {
			if (u.Scheme == "http" || u.Scheme == "unix") && clientTLS != nil {
				lg.Warn("scheme is http or unix while key and cert files are present; ignoring key and cert files", zap.String("client-url", u.String()))
			}
		}
	}
	for _, cl := range m.clients {
		if err := cl.bind(clientTLS); err != nil {
			m.closeListeners(peerLs, nil)
			return nil, err
		}
	}
	metricsLs, err := listenMetrics(cfg.ListenMetricsURLs, clientTLS)
	if err != nil {
		m.closeListeners(peerLs, nil)
		return nil, err
	}
	if err := setSRVCluster(lg, cfg, &scfg, peerTLS); err != nil {
		m.closeListeners(peerLs, metricsLs)
		return nil, err
	}

	srv, err := server.New(scfg)
	if err != nil {
		m.closeListeners(peerLs, metricsLs)
		return nil, err
	}
	m.srv = srv
	srv.Start()

	gs := v3rpc.NewServer(srv, v3rpc.Options{
		Logger:               lg,
		MaxRequestBytes:      cfg.MaxRequestBytes,
		MaxTxnOps:            cfg.MaxTxnOps,
		MaxConcurrentStreams: cfg.MaxConcurrentStreams,
		KeepaliveMinTime:     cfg.GRPCKeepAliveMinTime,
		KeepaliveInterval:    cfg.GRPCKeepAliveInterval,
		KeepaliveTimeout:     cfg.GRPCKeepAliveTimeout,
		StorageVersion:       server.StorageVersion,
		ElectionTimeout:      scfg.ElectionTimeout(),
	})
	if m.conc, err = registerConcurrency(gs, lg); err != nil {
		m.closeListeners(peerLs, metricsLs)
		srv.Stop()
		return nil, err
	}
	ho := httpapi.Options{
		Logger:       lg,
		Gatherer:     reg,
		Versions:     httpapi.Versions{Server: server.Version, Storage: server.StorageVersion},
		ProbeTimeout: scfg.RequestTimeout(),
		EnablePprof:  cfg.EnablePprof,
	}
	h := httpapi.NewHandler(srv, ho)
	mh := httpapi.NewMetricsHandler(srv, ho)
	if cfg.EnableV2 {
		h = v2http.Wrap(h, srv, lg, scfg.RequestTimeout())
	}
	// The client listeners add the JSON gateway (/v3/) to h; the metrics
	// URLs serve metrics and health only, as etcd's do.
	if cfg.EnableGRPCGateway {
		gw, err := gateway.New(gs, gateway.Options{Logger: lg})
		if err != nil {
			m.closeListeners(peerLs, metricsLs)
			m.conc.close()
			srv.Stop()
			return nil, err
		}
		m.gw = gw
		h = gw.Wrap(h)
	}
	for _, ml := range metricsLs {
		hs := &http.Server{Handler: mh, ReadHeaderTimeout: 30 * time.Second, ErrorLog: zap.NewStdLog(lg)}
		m.peers = append(m.peers, hs)
		lg.Info("serving metrics", zap.String("address", ml.url.String()))
		go func(ml metricsListener) {
			if err := hs.Serve(ml.l); !isClosed(err) {
				m.errc <- fmt.Errorf("metrics listener %s: %w", ml.url.String(), err)
			}
		}(ml)
	}
	for _, pl := range peerLs {
		// No HTTP/2: the TLS listener already did the handshake, and an
		// empty TLSNextProto keeps net/http from switching to h2 on it.
		hs := &http.Server{Handler: peerHandler(srv), ReadHeaderTimeout: 30 * time.Second, ErrorLog: zap.NewStdLog(lg),
			TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
		m.peers = append(m.peers, hs)
		go func(pl peerListener) {
			if err := hs.Serve(pl.l); !isClosed(err) {
				m.errc <- fmt.Errorf("peer listener %s: %w", pl.url.String(), err)
			}
		}(pl)
	}
	go func() {
		// etcd's initial corruption check: peers are served by now, clients
		// not yet.
		if scfg.InitialCorruptCheck {
			if err := srv.InitialCorruptCheck(context.Background()); err != nil {
				m.errc <- err
				return
			}
		}
		select {
		case <-srv.ReadyNotify():
		case err := <-srv.Err():
			m.errc <- err
			return
		}
		lg.Info("ready to serve client requests")
		for _, cl := range m.clients {
			go func(cl *clientListener) {
				if err := cl.serve(gs, h, httpOptions{MaxConcurrentStreams: cfg.MaxConcurrentStreams}); err != nil {
					m.errc <- fmt.Errorf("client listener %s: %w", cl.addr, err)
				}
			}(cl)
		}
		go func() {
			if err := <-srv.Err(); err != nil {
				m.errc <- err
			}
		}()
	}()
	return m, nil
}

// closeListeners closes what start bound before it failed.
func (m *member) closeListeners(peers []peerListener, metrics []metricsListener) {
	for _, p := range peers {
		p.l.Close()
	}
	for _, ml := range metrics {
		ml.l.Close()
	}
	for _, c := range m.clients {
		c.close()
	}
}

// stopRemoved stops a member that was removed from the cluster, with
// etcd's lines. Like etcd it exits 0 once it had served clients, and 1 when
// it learned of its removal while starting (a restart on a removed
// member's data dir).
func (m *member) stopRemoved(err error) int {
	m.lg.Warn("server error", zap.Error(server.ErrMemberRemoved), zap.NamedError("cause", err))
	m.lg.Warn("data-dir used by this member must be removed")
	served := false
	select {
	case <-m.srv.ReadyNotify():
		served = true
	default:
	}
	m.stop()
	if !served {
		m.lg.Error("member stopped before serving clients", zap.Error(server.ErrMemberRemoved))
		return 1
	}
	return 0
}

// stopGracefully stops as stop does, but a leader first hands leadership
// to a connected voter (etcd does the same on SIGTERM), between closing the
// client listeners and the peer ones, which the handover needs.
func (m *member) stopGracefully() {
	for _, c := range m.clients {
		c.close()
	}
	if m.gw != nil {
		m.gw.Close()
	}
	if m.srv != nil {
		m.srv.TransferLeadershipOnShutdown()
	}
	m.stop()
}

// stop closes the listeners, then the server.
func (m *member) stop() {
	for _, c := range m.clients {
		c.close()
	}
	for _, p := range m.peers {
		p.Close()
	}
	if m.gw != nil {
		m.gw.Close()
	}
	if m.conc != nil {
		m.conc.close()
	}
	if m.srv != nil {
		m.srv.Stop()
	}
}
