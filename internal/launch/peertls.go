package launch

import (
	"crypto/tls"
	"fmt"
	"path/filepath"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/config"
)

// peerTLSInfo returns the TLS settings of the peer listeners and of this
// member's connections to its peers (--peer-* flags), or nil without any.
//
// With --peer-auto-tls and no --peer-cert-file/--peer-key-file, a
// self-signed certificate for the hosts of --listen-peer-urls is written to
// (or reused from) <data-dir>/fixtures/peer, as etcd does; peers then skip
// verifying each other's certificates (etcd's InsecureSkipVerify for auto
// TLS). --peer-client-cert-auth (or a --peer-trusted-ca-file) makes the
// listener require client certificates whose SANs match the connecting
// address, unless --peer-skip-client-san-verification;
// --peer-cert-allowed-cn / -hostname and --peer-crl-file apply to them.
func peerTLSInfo(lg *zap.Logger, cfg *config.Config) (*transport.TLSInfo, error) {
	t := cfg.PeerTLS
	info := transport.TLSInfo{
		CertFile:            t.CertFile,
		KeyFile:             t.KeyFile,
		ClientCertFile:      t.ClientCertFile,
		ClientKeyFile:       t.ClientKeyFile,
		TrustedCAFile:       t.TrustedCAFile,
		ClientCertAuth:      t.ClientCertAuth,
		CRLFile:             t.CRLFile,
		AllowedCNs:          t.AllowedCNs,
		AllowedHostnames:    t.AllowedHostnames,
		SkipClientSANVerify: t.SkipClientSANVerify,
	}
	if cfg.PeerAutoTLS {
		if info.Empty() {
			hosts := make([]string, 0, len(cfg.ListenPeerURLs))
			for _, u := range cfg.ListenPeerURLs {
				hosts = append(hosts, u.Host)
			}
			self, err := transport.SelfCert(lg, filepath.Join(cfg.DataDir, "fixtures", "peer"), hosts, cfg.SelfSignedCertValidity)
			if err != nil {
				return nil, fmt.Errorf("failed to get peer self-signed certs: %w", err)
			}
			info = self
		} else {
			lg.Warn("ignoring peer auto TLS since certs given")
		}
	}
	if info.Empty() {
		return nil, nil
	}
	var err error
	if info.MinVersion, err = tlsVersion(cfg.TLSMinVersion); err != nil {
		return nil, err
	}
	if info.MaxVersion, err = tlsVersion(cfg.TLSMaxVersion); err != nil {
		return nil, err
	}
	info.Logger = lg
	info.HandshakeFailure = logHandshakeFailure(lg, "rejected connection on peer endpoint")
	if _, err := info.ServerConfig(); err != nil {
		return nil, fmt.Errorf("peer TLS: %w", err)
	}
	return &info, nil
}

// peerClientTLS is the TLS configuration this member dials its peers with,
// HTTP/1.1 only (etcd's peer listener answers h2 with an empty reply).
func peerClientTLS(info *transport.TLSInfo) (*tls.Config, error) {
	if info == nil {
		return nil, nil
	}
	c, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("peer client TLS: %w", err)
	}
	c.NextProtos = []string{"http/1.1"}
	return c, nil
}
