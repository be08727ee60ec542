package discovery

import (
	"context"
	"net"
	"strings"
)

// TestDNSServerEnv names the environment variable that points every name
// lookup of the process at one DNS server ("127.0.0.1:5353"), so process
// tests can serve SRV and A records from a server on loopback. It is for
// tests only: production lookups use the system's resolver configuration.
const TestDNSServerEnv = "CAIRN_TEST_DNS_SERVER"

// UseTestDNSServer replaces the process's resolver (net.DefaultResolver)
// with Go's own resolver sending every query, over UDP or TCP, to the
// server named by TestDNSServerEnv in environ (NAME=value entries), and
// returns that address; it does nothing and returns "" when the variable
// is unset or empty. /etc/hosts is still read first, as Go's resolver does.
func UseTestDNSServer(environ []string) string {
	addr := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, TestDNSServerEnv+"="); ok {
			addr = v
		}
	}
	if addr == "" {
		return ""
	}
	net.DefaultResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	return addr
}
