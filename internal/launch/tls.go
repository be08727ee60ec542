package launch

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/config"
)

// clientTLSInfo returns the TLS settings of the client listeners (and of
// https metrics URLs), or nil when no certificate is configured.
//
// With --auto-tls and no --cert-file/--key-file, a self-signed certificate
// valid --self-signed-cert-validity years for the hosts of the client URLs
// is written to (or, if present, reused from) <data-dir>/fixtures/client
// as cert.pem and key.pem, by etcd's own transport.SelfCert. As in etcd,
// the generated settings replace the others: --trusted-ca-file,
// --client-cert-auth and --client-crl-file do not apply to them.
//
// --client-crl-file is checked after each handshake: a connection whose
// client certificate is revoked is closed (transport.NewTLSListener).
func clientTLSInfo(lg *zap.Logger, cfg *config.Config) (*transport.TLSInfo, error) {
	t := cfg.ClientTLS
	info := transport.TLSInfo{
		CertFile:       t.CertFile,
		KeyFile:        t.KeyFile,
		ClientCertFile: t.ClientCertFile,
		ClientKeyFile:  t.ClientKeyFile,
		TrustedCAFile:  t.TrustedCAFile,
		ClientCertAuth: t.ClientCertAuth,
		CRLFile:        t.CRLFile,
		AllowedCNs:     t.AllowedCNs,
	}
	if cfg.ClientAutoTLS {
		if info.Empty() {
			hosts := make([]string, 0, len(cfg.ListenClientURLs)+len(cfg.ListenClientHTTPURLs))
			for _, u := range append(append([]url.URL{}, cfg.ListenClientURLs...), cfg.ListenClientHTTPURLs...) {
				hosts = append(hosts, u.Host)
			}
			self, err := transport.SelfCert(lg, filepath.Join(cfg.DataDir, "fixtures", "client"), hosts, cfg.SelfSignedCertValidity)
			if err != nil {
				return nil, &selfCertError{err}
			}
			info = self
		} else {
			lg.Warn("ignoring client auto TLS since certs given")
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
	info.HandshakeFailure = logHandshakeFailure(lg, "rejected connection on client endpoint")
	// Load the files now, so that a bad certificate stops the start
	// rather than every handshake.
	if _, err := info.ServerConfig(); err != nil {
		return nil, fmt.Errorf("client TLS: %w", err)
	}
	return &info, nil
}

// selfCertError is a failure to create or load the --auto-tls certificate;
// etcd stops with "failed to get client self-signed certs".
type selfCertError struct{ err error }

func (e *selfCertError) Error() string { return e.err.Error() }
func (e *selfCertError) Unwrap() error { return e.err }

// tlsVersion parses --tls-min-version / --tls-max-version ("" = Go's).
func tlsVersion(v string) (uint16, error) {
	switch v {
	case "":
		return 0, nil
	case "TLS1.2":
		return tls.VersionTLS12, nil
	case "TLS1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("unexpected TLS version %q (must be one of: TLS1.2, TLS1.3)", v)
}

// logHandshakeFailure logs a refused TLS connection (a failed handshake or
// a revoked certificate) in etcd's shape; a client that just went away (EOF)
// is logged at debug level only.
func logHandshakeFailure(lg *zap.Logger, msg string) func(*tls.Conn, error) {
	return func(c *tls.Conn, err error) {
		log := lg.Warn
		if errors.Is(err, io.EOF) {
			log = lg.Debug
		}
		st := c.ConnectionState()
		fields := []zap.Field{zap.String("remote-addr", c.RemoteAddr().String()), zap.String("server-name", st.ServerName)}
		if len(st.PeerCertificates) > 0 {
			cert := st.PeerCertificates[0]
			ips := make([]string, len(cert.IPAddresses))
			for i, ip := range cert.IPAddresses {
				ips[i] = ip.String()
			}
			fields = append(fields, zap.Strings("ip-addresses", ips), zap.Strings("dns-names", cert.DNSNames))
		}
		log(msg, append(fields, zap.Error(err))...)
	}
}
