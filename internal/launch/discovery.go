package launch

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/config"
	"github.com/cairnkv/cairn/internal/discovery"
	"github.com/cairnkv/cairn/internal/server"
)

// setDiscovery prepares v2 (--discovery) or v3 (--discovery-endpoints)
// discovery as etcd does: the initial cluster is this member alone, and
// member IDs are computed with the discovery URL (v2) or token (v3) in
// place of --initial-cluster-token.
func setDiscovery(lg *zap.Logger, cfg *config.Config, scfg *server.Config) {
	self := map[string][]string{cfg.Name: urlStrings(cfg.InitialAdvertisePeerURLs)}
	switch {
	case cfg.Discovery != "":
		scfg.InitialCluster = self
		scfg.InitialClusterToken = cfg.Discovery
		scfg.DiscoveryURL = cfg.Discovery
		scfg.Discovery = v2Discoverer{lg: lg, url: cfg.Discovery, proxy: cfg.DiscoveryProxy}
	case len(cfg.DiscoveryCfg.Client.Endpoints) > 0:
		scfg.InitialCluster = self
		scfg.InitialClusterToken = cfg.DiscoveryCfg.Token
		scfg.Discovery = v3Discoverer{lg: lg, cfg: v3Config(cfg.DiscoveryCfg)}
	}
}

// v3Config is the discovery client as etcd builds it from its flags.
func v3Config(d config.DiscoveryConfig) discovery.V3Config {
	c := d.Client
	return discovery.V3Config{Token: d.Token, Client: clientv3.ConfigSpec{
		Endpoints:          c.Endpoints,
		RequestTimeout:     c.RequestTimeout,
		DialTimeout:        c.DialTimeout,
		KeepAliveTime:      c.KeepAliveTime,
		KeepAliveTimeout:   c.KeepAliveTimeout,
		MaxCallSendMsgSize: c.MaxCallSendMsgSize,
		MaxCallRecvMsgSize: c.MaxCallRecvMsgSize,
		Secure: &clientv3.SecureConfig{
			Cert: c.Secure.Cert, Key: c.Secure.Key, Cacert: c.Secure.Cacert, ServerName: c.Secure.ServerName,
			InsecureTransport: c.Secure.InsecureTransport, InsecureSkipVerify: c.Secure.InsecureSkipVerify,
		},
		Auth: &clientv3.AuthConfig{Username: c.Auth.Username, Password: c.Auth.Password},
	}}
}

type v2Discoverer struct {
	lg         *zap.Logger
	url, proxy string
}

func (d v2Discoverer) Join(ctx context.Context, id uint64, self string) (string, error) {
	return discovery.JoinV2(ctx, d.lg, d.url, d.proxy, id, self)
}

type v3Discoverer struct {
	lg  *zap.Logger
	cfg discovery.V3Config
}

func (d v3Discoverer) Join(ctx context.Context, id uint64, self string) (string, error) {
	return discovery.JoinV3(ctx, d.lg, d.cfg, id, self)
}

// setSRVCluster replaces the initial cluster with the one DNS SRV records
// of --discovery-srv describe (etcd does this after binding its
// listeners). With https peers and no --peer-trusted-ca-file, peer
// certificates are then checked against the SRV domain.
func setSRVCluster(lg *zap.Logger, cfg *config.Config, scfg *server.Config, peerTLS *transport.TLSInfo) error {
	if cfg.DiscoverySRV == "" {
		return nil
	}
	s, err := discovery.SRVCluster(lg, cfg.DiscoverySRV, cfg.DiscoverySRVName, cfg.Name, urlStrings(cfg.InitialAdvertisePeerURLs))
	if err != nil {
		return fmt.Errorf("error setting up initial cluster: %w", err)
	}
	um, err := types.NewURLsMap(s)
	if err != nil {
		return fmt.Errorf("error setting up initial cluster: %w", err)
	}
	scfg.InitialCluster = map[string][]string{}
	for name, urls := range um {
		scfg.InitialCluster[name] = urls.StringSlice()
	}
	if discovery.SRVNeedsServerName(s) && peerTLS != nil && peerTLS.TrustedCAFile == "" {
		peerTLS.ServerName = cfg.DiscoverySRV
		if scfg.PeerTLS, err = peerClientTLS(peerTLS); err != nil {
			return err
		}
	}
	return nil
}

// logDiscoveryError writes etcd's lines for a failed discovery join and
// reports whether err was one (etcd then exits 1 without its fatal
// "discovery failed" line).
func logDiscoveryError(lg *zap.Logger, cfg *config.Config, err error) bool {
	var de *discovery.Error
	if !errors.As(err, &de) {
		return false
	}
	lg.Error("bootstrap failed", zap.Error(err))
	switch {
	case errors.Is(de.Err, discovery.ErrDuplicateID):
		lg.Warn("member has been registered with discovery service",
			zap.String("name", cfg.Name), zap.String("discovery-token", cfg.Discovery), zap.Error(de.Err))
		lg.Warn("but could not find valid cluster configuration", zap.String("data-dir", cfg.DataDir))
		lg.Warn("check data dir if previous bootstrap succeeded")
		lg.Warn("or use a new discovery token if previous bootstrap failed")
	case errors.Is(de.Err, discovery.ErrDuplicateName):
		lg.Warn("member with duplicated name has already been registered",
			zap.String("discovery-token", cfg.Discovery), zap.Error(de.Err))
		lg.Warn("cURL the discovery token URL for details")
		lg.Warn("do not reuse discovery token; generate a new one to bootstrap a cluster")
	default:
		lg.Warn("failed to bootstrap; discovery token was already used",
			zap.String("discovery-token", cfg.Discovery), zap.Error(err))
		lg.Warn("do not reuse discovery token; generate a new one to bootstrap a cluster")
	}
	return true
}
