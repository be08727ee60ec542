package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"sigs.k8s.io/yaml"
)

// configYAML is the config-file shape: Config's tagged fields plus the keys
// that are converted (URL lists, nested TLS, feature gates). Its name and
// the embedded Config appear in type errors, as in etcd.
type configYAML struct {
	Config
	configJSON
}

type configJSON struct {
	ListenPeerURLsJSON       string `json:"listen-peer-urls"`
	ListenClientURLsJSON     string `json:"listen-client-urls"`
	ListenClientHTTPURLsJSON string `json:"listen-client-http-urls"`
	AdvertisePeerURLsJSON    string `json:"initial-advertise-peer-urls"`
	AdvertiseClientURLsJSON  string `json:"advertise-client-urls"`
	ListenMetricsURLsJSON    string `json:"listen-metrics-urls"`

	CORSJSON          string `json:"cors"`
	HostWhitelistJSON string `json:"host-whitelist"`

	ClientSecurityJSON securityConfig `json:"client-transport-security"`
	PeerSecurityJSON   securityConfig `json:"peer-transport-security"`

	FeatureGatesJSON string `json:"feature-gates"`
}

type securityConfig struct {
	CertFile            string   `json:"cert-file"`
	KeyFile             string   `json:"key-file"`
	ClientCertFile      string   `json:"client-cert-file"`
	ClientKeyFile       string   `json:"client-key-file"`
	CertAuth            bool     `json:"client-cert-auth"`
	TrustedCAFile       string   `json:"trusted-ca-file"`
	AutoTLS             bool     `json:"auto-tls"`
	AllowedCNs          []string `json:"allowed-cn"`
	AllowedHostnames    []string `json:"allowed-hostname"`
	SkipClientSANVerify bool     `json:"skip-client-san-verification,omitempty"`
}

// clientTLSKeys maps client-transport-security keys to flag names, so that
// ExplicitlySet sees them (etcd itself does not record them).
var clientTLSKeys = map[string]string{
	"cert-file": "cert-file", "key-file": "key-file", "client-cert-file": "client-cert-file",
	"client-key-file": "client-key-file", "client-cert-auth": "client-cert-auth",
	"trusted-ca-file": "trusted-ca-file", "auto-tls": "auto-tls", "allowed-hostname": "client-cert-allowed-hostname",
}

// fromFile reads the YAML config file at path on top of the defaults and
// validates it. URL list errors are printed and end Load (ExitError).
func (l *loader) fromFile(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	y := &configYAML{Config: *Default()}
	if err := yaml.Unmarshal(b, y); err != nil {
		return nil, err
	}
	c := &y.Config
	if y.FeatureGatesJSON != "" {
		if err := c.FeatureGates.set(y.FeatureGatesJSON); err != nil {
			return nil, err
		}
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	for k := range raw {
		c.setExplicit(k)
	}
	if pts, ok := raw["peer-transport-security"]; ok {
		m, isMap := pts.(map[string]any)
		if !isMap {
			return nil, errors.New("invalid peer-transport-security")
		}
		for k := range m {
			c.setExplicit("peer-" + k)
		}
	}
	if m, ok := raw["client-transport-security"].(map[string]any); ok {
		for k := range m {
			if name, ok := clientTLSKeys[k]; ok {
				c.setExplicit(name)
			}
		}
	}
	// etcd's key for the old catch-up flag is misspelt; the flag name counts.
	if v, ok := raw["experimental-snapshot-catch-up-entries"].(float64); ok {
		c.ExperimentalSnapshotCatchUpEntries = uint64(v)
		c.setExplicit("experimental-snapshot-catchup-entries")
	}
	c.gatesText = y.FeatureGatesJSON
	if err := c.checkGateClash(); err != nil {
		return nil, err
	}

	for _, u := range []struct {
		key, text string
		dst       *[]url.URL
	}{
		{"listen-peer-urls", y.ListenPeerURLsJSON, &c.ListenPeerURLs},
		{"listen-client-urls", y.ListenClientURLsJSON, &c.ListenClientURLs},
		{"listen-client-http-urls", y.ListenClientHTTPURLsJSON, &c.ListenClientHTTPURLs},
		{"initial-advertise-peer-urls", y.AdvertisePeerURLsJSON, &c.InitialAdvertisePeerURLs},
		{"advertise-peer-urls", y.AdvertiseClientURLsJSON, &c.AdvertiseClientURLs}, // etcd misnames this key in the message
		{"listen-metrics-urls", y.ListenMetricsURLsJSON, &c.ListenMetricsURLs},
	} {
		if u.text == "" {
			continue
		}
		us, err := types.NewURLs(strings.Split(u.text, ","))
		if err != nil {
			err = fmt.Errorf("unexpected error setting up %s: %w", u.key, err)
			fmt.Fprintln(l.stderr, err)
			return nil, &ExitError{Code: 1, Err: err, Printed: true, Logs: l.logs}
		}
		*u.dst = us
	}
	if y.CORSJSON != "" {
		v := &urlsValue{except: "*", raw: &c.CORS}
		if err := v.Set(y.CORSJSON); err != nil {
			err = fmt.Errorf("new UniqueURLs should never fail: %w", err)
			fmt.Fprintf(l.stderr, "panic: %v\n", err)
			return nil, &ExitError{Code: 2, Err: err, Printed: true}
		}
	}
	if y.HostWhitelistJSON != "" {
		_ = (&uniqueStringsValue{&c.HostWhitelist}).Set(y.HostWhitelistJSON)
	}
	if (c.Discovery != "" || c.DiscoverySRV != "" || len(c.DiscoveryCfg.Client.Endpoints) > 0) && c.InitialCluster == DefaultName+"="+DefaultListenPeerURL {
		c.InitialCluster = ""
	}
	if c.InitialClusterState == "" {
		c.InitialClusterState = ClusterStateNew
	}
	copySec := func(t *TLSInfo, s securityConfig) {
		crl := t.CRLFile
		*t = TLSInfo{CertFile: s.CertFile, KeyFile: s.KeyFile, ClientCertFile: s.ClientCertFile, ClientKeyFile: s.ClientKeyFile,
			ClientCertAuth: s.CertAuth, TrustedCAFile: s.TrustedCAFile, CRLFile: crl, AllowedCNs: s.AllowedCNs,
			AllowedHostnames: s.AllowedHostnames, SkipClientSANVerify: s.SkipClientSANVerify}
	}
	copySec(&c.ClientTLS, y.ClientSecurityJSON)
	copySec(&c.PeerTLS, y.PeerSecurityJSON)
	c.ClientAutoTLS = y.ClientSecurityJSON.AutoTLS
	c.PeerAutoTLS = y.PeerSecurityJSON.AutoTLS
	if c.SelfSignedCertValidity == 0 {
		c.SelfSignedCertValidity = 1
	}
	if err := c.checkBody(l.warn, l.buildLogger); err != nil {
		return nil, err
	}
	return c, nil
}

// assign copies *src into *dst; both are pointers to the same type.
func assign(dst, src any) {
	reflect.ValueOf(dst).Elem().Set(reflect.ValueOf(src).Elem())
}
