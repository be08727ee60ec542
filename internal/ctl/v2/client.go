package ctlv2

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	client "go.etcd.io/etcd/client/v2"
)

// dialTimeout bounds connection set-up unless --total-timeout is shorter,
// as in etcdctl.
const dialTimeout = 30 * time.Second

// defaultEndpoints are used when no flag or variable names any.
const defaultEndpoints = "http://127.0.0.1:2379,http://127.0.0.1:4001"

// firstSet returns the first non-empty value: a flag, then its variable.
func (r *runner) firstSet(c *cli.Context, pairs ...[2]string) string {
	for _, p := range pairs {
		if v := c.GlobalString(p[0]); p[0] != "" && v != "" {
			return v
		}
		if v := r.env.Getenv(p[1]); p[1] != "" && v != "" {
			return v
		}
	}
	return ""
}

// discovery returns the SRV domain, whether insecure results are kept, and
// the service name (environment only, as in etcdctl).
func (r *runner) discovery(c *cli.Context) (domain string, insecure bool, service string) {
	domain = r.firstSet(c, [2]string{"discovery-srv", "ETCDCTL_DISCOVERY_SRV"})
	insecure = c.GlobalBool("insecure-discovery") || r.env.Getenv("ETCDCTL_INSECURE_DISCOVERY") != ""
	service = r.env.Getenv("ETCDCTL_DISCOVERY_SRV_NAME")
	return domain, insecure, service
}

// endpoints are the SRV-discovered ones, else the first of --endpoints,
// ETCDCTL_ENDPOINTS, --endpoint, ETCDCTL_ENDPOINT, --peers, ETCDCTL_PEERS,
// else the default; an endpoint without a scheme gets http.
func (r *runner) endpoints(c *cli.Context) ([]string, error) {
	var eps []string
	if domain, insecure, service := r.discovery(c); domain != "" {
		found, err := client.NewSRVDiscover().Discover(domain, service)
		if err != nil {
			return nil, err
		}
		for _, ep := range found {
			if !insecure && strings.HasPrefix(ep, "http://") {
				fmt.Fprintf(r.env.Stderr, "ignoring discovered insecure endpoint %q\n", ep)
				continue
			}
			eps = append(eps, ep)
		}
	}
	if len(eps) == 0 {
		s := r.firstSet(c,
			[2]string{"endpoints", "ETCDCTL_ENDPOINTS"},
			[2]string{"endpoint", "ETCDCTL_ENDPOINT"},
			[2]string{"peers", "ETCDCTL_PEERS"})
		if s == "" {
			s = defaultEndpoints
		}
		eps = strings.Split(s, ",")
	}
	for i, ep := range eps {
		u, err := url.Parse(ep)
		if err != nil {
			return nil, err
		}
		if u.Scheme == "" {
			u.Scheme = "http"
		}
		eps[i] = u.String()
	}
	return eps, nil
}

// transport builds the HTTP transport from --cert-file, --key-file,
// --ca-file or their variables.
func (r *runner) transport(c *cli.Context) (*http.Transport, error) {
	domain, insecure, _ := r.discovery(c)
	if insecure {
		domain = ""
	}
	tls := transport.TLSInfo{
		CertFile:      r.firstSet(c, [2]string{"cert-file", "ETCDCTL_CERT_FILE"}),
		KeyFile:       r.firstSet(c, [2]string{"key-file", "ETCDCTL_KEY_FILE"}),
		TrustedCAFile: r.firstSet(c, [2]string{"ca-file", "ETCDCTL_CA_FILE"}),
		ServerName:    domain,
	}
	dt := dialTimeout
	if tt := c.GlobalDuration("total-timeout"); tt != 0 && tt < dt {
		dt = tt
	}
	return transport.NewTransport(tls, dt)
}

// newClient builds the v2 client; a bad configuration prints its error
// and exits 1.
func (r *runner) newClient(c *cli.Context) (client.Client, error) {
	eps, err := r.endpoints(c)
	if err == nil {
		var tr *http.Transport
		tr, err = r.transport(c)
		if err == nil {
			cfg := client.Config{Transport: tr, Endpoints: eps, HeaderTimeoutPerRequest: c.GlobalDuration("timeout")}
			if u := r.firstSet(c, [2]string{"username", "ETCDCTL_USERNAME"}); u != "" {
				cfg.Username, cfg.Password, err = r.credentials(u)
			}
			if err == nil {
				var hc client.Client
				if hc, err = client.New(cfg); err == nil {
					return hc, nil
				}
			}
		}
	}
	fmt.Fprintln(r.env.Stderr, err.Error())
	return nil, &exit{ExitBadArgs}
}

// credentials splits user[:password], prompting for a missing password.
func (r *runner) credentials(flag string) (string, string, error) {
	if name, pass, ok := strings.Cut(flag, ":"); ok {
		return name, pass, nil
	}
	fmt.Fprint(r.env.Stdout, "Password: ")
	line, err := bufio.NewReader(r.env.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", "", err
	}
	fmt.Fprintln(r.env.Stdout)
	return flag, strings.TrimRight(line, "\r\n"), nil
}

// syncedClient is newClient followed, unless --no-sync, by a sync of the
// endpoints from the member list.
func (r *runner) syncedClient(c *cli.Context) (client.Client, error) {
	hc, err := r.newClient(c)
	if err != nil {
		return nil, err
	}
	debug := c.GlobalBool("debug")
	if debug {
		client.EnablecURLDebug()
	}
	if !c.GlobalBool("no-sync") {
		if debug {
			fmt.Fprintf(r.env.Stderr, "start to sync cluster using endpoints(%s)\n", strings.Join(hc.Endpoints(), ","))
		}
		ctx, cancel := r.totalTimeout(c)
		err := hc.Sync(ctx)
		cancel()
		if err != nil {
			if errors.Is(err, client.ErrNoEndpoints) {
				fmt.Fprintf(r.env.Stderr, "etcd cluster has no published client endpoints.\n")
				fmt.Fprintf(r.env.Stderr, "Try '--no-sync' if you want to access non-published client endpoints(%s).\n", strings.Join(hc.Endpoints(), ","))
				return nil, r.fail(ExitServerError, err)
			}
			if isConnectionError(err) {
				return nil, r.fail(ExitBadConnection, err)
			}
		}
		if debug {
			fmt.Fprintf(r.env.Stderr, "got endpoints(%s) after sync\n", strings.Join(hc.Endpoints(), ","))
		}
	}
	if debug {
		fmt.Fprintf(r.env.Stderr, "Cluster-Endpoints: %s\n", strings.Join(hc.Endpoints(), ", "))
	}
	return hc, nil
}

// unsyncedClient is newClient without the sync (cluster-health).
func (r *runner) unsyncedClient(c *cli.Context) (client.Client, error) {
	hc, err := r.newClient(c)
	if err != nil {
		return nil, err
	}
	if c.GlobalBool("debug") {
		fmt.Fprintf(r.env.Stderr, "Cluster-Endpoints: %s\n", strings.Join(hc.Endpoints(), ", "))
		client.EnablecURLDebug()
	}
	return hc, nil
}

func (r *runner) keysAPI(c *cli.Context) (client.KeysAPI, error) {
	hc, err := r.syncedClient(c)
	if err != nil {
		return nil, err
	}
	return client.NewKeysAPI(hc), nil
}

func (r *runner) membersAPI(c *cli.Context) (client.MembersAPI, error) {
	hc, err := r.syncedClient(c)
	if err != nil {
		return nil, err
	}
	return client.NewMembersAPI(hc), nil
}

// totalTimeout bounds one command by --total-timeout.
func (r *runner) totalTimeout(c *cli.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.GlobalDuration("total-timeout"))
}

// isConnectionError tells a failure to reach any member (exit 2) from a
// server's answer. Like etcdctl it looks at the error's own type only (no
// unwrapping beyond a cluster error's list and a net.OpError's cause).
func isConnectionError(err error) bool {
	switch e := err.(type) {
	case *client.ClusterError:
		for _, sub := range e.Errors {
			if !isConnectionError(sub) {
				return false
			}
		}
		return true
	case *net.OpError:
		return e.Op == "dial" || e.Op == "read" || isConnectionError(e.Err)
	case syscall.Errno:
		return e == syscall.ECONNREFUSED
	case net.Error:
		return e.Timeout()
	}
	return false
}
