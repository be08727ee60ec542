package ctl

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.etcd.io/etcd/client/pkg/v3/srv"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/grpclog"

	"github.com/cairnkv/cairn/internal/ctl/printer"
)

// globalFlags are etcdctl's persistent flags, inherited by every command.
type globalFlags struct {
	endpoints          []string
	debug              bool
	writeOut           string
	hex                bool
	dialTimeout        time.Duration
	commandTimeout     time.Duration
	keepAliveTime      time.Duration
	keepAliveTimeout   time.Duration
	maxRequestBytes    int
	maxRecvBytes       int
	insecureTransport  bool
	insecureDiscovery  bool
	insecureSkipVerify bool
	cert, key, cacert  string
	user, password     string
	discoverySrv       string
	discoverySrvName   string
}

func (g *globalFlags) register(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.StringSliceVar(&g.endpoints, "endpoints", []string{"127.0.0.1:2379"}, "gRPC endpoints")
	pf.BoolVar(&g.debug, "debug", false, "enable client-side debug logging")
	pf.StringVarP(&g.writeOut, "write-out", "w", "simple", "set the output format (fields, json, protobuf, simple, table)")
	pf.BoolVar(&g.hex, "hex", false, "print byte strings as hex encoded strings")
	pf.DurationVar(&g.dialTimeout, "dial-timeout", 2*time.Second, "dial timeout for client connections")
	pf.DurationVar(&g.commandTimeout, "command-timeout", 5*time.Second, "timeout for short running command (excluding dial timeout)")
	pf.DurationVar(&g.keepAliveTime, "keepalive-time", 2*time.Second, "keepalive time for client connections")
	pf.DurationVar(&g.keepAliveTimeout, "keepalive-timeout", 6*time.Second, "keepalive timeout for client connections")
	pf.IntVar(&g.maxRequestBytes, "max-request-bytes", 0, "client-side request send limit in bytes (if 0, it defaults to 2.0 MiB (2 * 1024 * 1024).)")
	pf.IntVar(&g.maxRecvBytes, "max-recv-bytes", 0, "client-side response receive limit in bytes (if 0, it defaults to \"math.MaxInt32\")")
	pf.BoolVar(&g.insecureTransport, "insecure-transport", true, "disable transport security for client connections")
	pf.BoolVar(&g.insecureDiscovery, "insecure-discovery", true, "accept insecure SRV records describing cluster endpoints")
	pf.BoolVar(&g.insecureSkipVerify, "insecure-skip-tls-verify", false, "skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)")
	pf.StringVar(&g.cert, "cert", "", "identify secure client using this TLS certificate file")
	pf.StringVar(&g.key, "key", "", "identify secure client using this TLS key file")
	pf.StringVar(&g.cacert, "cacert", "", "verify certificates of TLS-enabled secure servers using this CA bundle")
	pf.StringVar(&g.user, "user", "", "username[:password] for authentication (prompt if password is not supplied)")
	pf.StringVar(&g.password, "password", "", "password for authentication (if this option is used, --user option shouldn't include password)")
	pf.StringVarP(&g.discoverySrv, "discovery-srv", "d", "", "domain name to query for SRV records describing cluster endpoints")
	pf.StringVar(&g.discoverySrvName, "discovery-srv-name", "", "service name to query when using DNS discovery")
}

// commandCtx bounds one short-running request by --command-timeout.
func (a *app) commandCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), a.g.commandTimeout)
}

// clientSpec reads the ETCDCTL_* environment into the inherited flags and
// turns the global flags into a client configuration, choosing the printer
// on the way. The order of checks, and so which error wins, is etcdctl's.
func (a *app) clientSpec(cmd *cobra.Command) (*clientv3.ConfigSpec, error) {
	fs := cmd.InheritedFlags()
	if err := a.applyEnv(fs); err != nil {
		return nil, err
	}
	if a.g.debug {
		grpclog.SetLoggerV2(grpclog.NewLoggerV2WithVerbosity(a.stderr, a.stderr, a.stderr, 4))
		fs.VisitAll(func(f *pflag.Flag) {
			fmt.Fprintf(a.stderr, "%s=%v\n", envName(f.Name), f.Value)
		})
	} else {
		grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, a.stderr))
	}
	eps, err := a.endpoints()
	if err != nil {
		return nil, exitWith(ExitError, err)
	}
	sec, err := a.secureConfig(cmd)
	if err != nil {
		return nil, err
	}
	auth, err := a.authConfig()
	if err != nil {
		return nil, err
	}
	if err := a.initDisplay(); err != nil {
		return nil, err
	}
	return &clientv3.ConfigSpec{
		Endpoints:          eps,
		DialTimeout:        a.g.dialTimeout,
		KeepAliveTime:      a.g.keepAliveTime,
		KeepAliveTimeout:   a.g.keepAliveTimeout,
		MaxCallSendMsgSize: a.g.maxRequestBytes,
		MaxCallRecvMsgSize: a.g.maxRecvBytes,
		Secure:             sec,
		Auth:               auth,
	}, nil
}

// initDisplay picks the printer for --write-out and --hex.
func (a *app) initDisplay() error {
	a.display = printer.New(a.g.writeOut, a.g.hex, a.stdout, a.stderr)
	if a.display == nil {
		return exitf(ExitBadFeature, "unsupported output format")
	}
	return nil
}

// newClient connects as spec says: a bad configuration exits 128, a client
// that cannot be created exits 2.
func (a *app) newClient(spec *clientv3.ConfigSpec) (*clientv3.Client, error) {
	lg, err := logutil.CreateDefaultZapLogger(zap.InfoLevel)
	if err != nil {
		return nil, exitWith(ExitError, err)
	}
	cfg, err := clientv3.NewClientConfig(spec, lg)
	if err != nil {
		return nil, exitWith(ExitBadArgs, err)
	}
	cli, err := clientv3.New(*cfg)
	if err != nil {
		return nil, exitWith(ExitBadConnection, err)
	}
	return cli, nil
}

// mustClient is clientSpec then newClient, the path of most commands.
func (a *app) client(cmd *cobra.Command) (*clientv3.Client, error) {
	spec, err := a.clientSpec(cmd)
	if err != nil {
		return nil, err
	}
	return a.newClient(spec)
}

// endpoints are the SRV-discovered ones, else --endpoints (trimmed).
func (a *app) endpoints() ([]string, error) {
	domain := a.g.discoverySrv
	if domain != "" {
		srvs, err := srv.GetClient("etcd-client", domain, a.g.discoverySrvName)
		if err != nil {
			return nil, fmt.Errorf("discover endpoints: %w", err)
		}
		if a.g.insecureDiscovery {
			if len(srvs.Endpoints) > 0 {
				return srvs.Endpoints, nil
			}
		} else {
			var eps []string
			for _, ep := range srvs.Endpoints {
				if strings.HasPrefix(ep, "http://") {
					fmt.Fprintf(a.stderr, "ignoring discovered insecure endpoint %q\n", ep)
					continue
				}
				eps = append(eps, ep)
			}
			if len(eps) > 0 {
				return eps, nil
			}
		}
	}
	eps := make([]string, len(a.g.endpoints))
	for i, ep := range a.g.endpoints {
		eps[i] = strings.TrimSpace(ep)
	}
	return eps, nil
}

func (a *app) secureConfig(cmd *cobra.Command) (*clientv3.SecureConfig, error) {
	for _, f := range []struct{ name, val string }{{"cert", a.g.cert}, {"key", a.g.key}, {"cacert", a.g.cacert}} {
		if f.val == "" && cmd.Flags().Changed(f.name) {
			return nil, exitf(ExitBadArgs, "empty string is passed to --%s option", f.name)
		}
	}
	sc := &clientv3.SecureConfig{
		Cert:               a.g.cert,
		Key:                a.g.key,
		Cacert:             a.g.cacert,
		InsecureTransport:  a.g.insecureTransport,
		InsecureSkipVerify: a.g.insecureSkipVerify,
	}
	// etcdctl passes the SRV domain as the TLS server name only when
	// insecure discovery is off.
	if !a.g.insecureDiscovery {
		sc.ServerName = a.g.discoverySrv
	}
	return sc, nil
}

// authConfig reads --user (user or user:password) and --password; with no
// password anywhere it prompts for one.
func (a *app) authConfig() (*clientv3.AuthConfig, error) {
	if a.g.user == "" {
		return nil, nil
	}
	if a.g.password != "" {
		return &clientv3.AuthConfig{Username: a.g.user, Password: a.g.password}, nil
	}
	if name, pass, ok := strings.Cut(a.g.user, ":"); ok {
		return &clientv3.AuthConfig{Username: name, Password: pass}, nil
	}
	pass, err := a.askPassword("Password: ")
	if err != nil {
		return nil, exitWith(ExitError, err)
	}
	return &clientv3.AuthConfig{Username: a.g.user, Password: pass}, nil
}

// askPassword prompts on stdout and reads one line from stdin.
// TODO: turn terminal echo off, as etcdctl does, when stdin is a terminal.
func (a *app) askPassword(prompt string) (string, error) {
	fmt.Fprint(a.stdout, prompt)
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprintln(a.stdout)
	return strings.TrimRight(line, "\r\n"), nil
}

// argOrStdin returns args[i], or else all of stdin, which must not be empty.
func (a *app) argOrStdin(args []string, i int) (string, error) {
	if i < len(args) {
		return args[i], nil
	}
	b, err := io.ReadAll(a.stdin)
	if err != nil || len(b) == 0 {
		return "", fmt.Errorf("no available argument and stdin")
	}
	return string(b), nil
}
