package ctl

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/logutil"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/ctl/printer"
)

// endpointOptions are the endpoint group's flags.
type endpointOptions struct {
	cluster bool  // use every member's client URLs instead of --endpoints
	rev     int64 // hashkv --rev
}

func (a *app) newEndpointCommand() *cobra.Command {
	o := &endpointOptions{}
	cmd := &cobra.Command{
		Use:   "endpoint <subcommand>",
		Short: "Endpoint related commands",
	}
	cmd.PersistentFlags().BoolVar(&o.cluster, "cluster", false, "use all endpoints from the cluster member list")

	health := &cobra.Command{
		Use:   "health",
		Short: "Checks the healthiness of endpoints specified in `--endpoints` flag",
		RunE:  a.run(func(cmd *cobra.Command, _ []string) error { return a.endpointHealth(cmd, o) }),
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Prints out the status of endpoints specified in `--endpoints` flag",
		Long: `When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.
`,
		RunE: a.run(func(cmd *cobra.Command, _ []string) error { return a.endpointStatus(cmd, o) }),
	}
	hashkv := &cobra.Command{
		Use:   "hashkv",
		Short: "Prints the KV history hash for each endpoint in --endpoints",
		RunE:  a.run(func(cmd *cobra.Command, _ []string) error { return a.endpointHashKV(cmd, o) }),
	}
	hashkv.Flags().Int64Var(&o.rev, "rev", 0, "maximum revision to hash (default: latest revision)")
	cmd.AddCommand(health, status, hashkv)
	return cmd
}

// endpointHealth checks every endpoint concurrently: a linearizable read of
// key "health" (permission denied counts as healthy), then no active alarm.
// Results come in completion order.
func (a *app) endpointHealth(cmd *cobra.Command, o *endpointOptions) error {
	if err := a.applyEnv(cmd.InheritedFlags()); err != nil {
		return err
	}
	if err := a.initDisplay(); err != nil {
		return err
	}
	sec, err := a.secureConfig(cmd)
	if err != nil {
		return err
	}
	auth, err := a.authConfig()
	if err != nil {
		return err
	}
	eps, err := a.clusterEndpoints(o)
	if err != nil {
		return err
	}
	lg, err := logutil.CreateDefaultZapLogger(zap.InfoLevel)
	if err != nil {
		return exitWith(ExitError, err)
	}
	var cfgs []*clientv3.Config
	for _, ep := range eps {
		cfg, err := clientv3.NewClientConfig(&clientv3.ConfigSpec{
			Endpoints:        []string{ep},
			DialTimeout:      a.g.dialTimeout,
			KeepAliveTime:    a.g.keepAliveTime,
			KeepAliveTimeout: a.g.keepAliveTimeout,
			Secure:           sec,
			Auth:             auth,
		}, lg)
		if err != nil {
			return exitWith(ExitBadArgs, err)
		}
		cfg.Logger = lg.Named("client")
		cfgs = append(cfgs, cfg)
	}

	results := make(chan printer.EndpointHealth, len(cfgs))
	var wg sync.WaitGroup
	for _, cfg := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- a.checkHealth(cfg)
		}()
	}
	wg.Wait()
	close(results)

	var hs []printer.EndpointHealth
	unhealthy := false
	for h := range results {
		hs = append(hs, h)
		unhealthy = unhealthy || h.Error != ""
	}
	if err := a.display.EndpointHealth(hs); err != nil {
		return err
	}
	if unhealthy {
		return exitf(ExitError, "unhealthy cluster")
	}
	return nil
}

func (a *app) checkHealth(cfg *clientv3.Config) printer.EndpointHealth {
	ep := cfg.Endpoints[0]
	cli, err := clientv3.New(*cfg)
	if err != nil {
		return printer.EndpointHealth{Ep: ep, Error: err.Error()}
	}
	defer cli.Close()
	start := time.Now()
	ctx, cancel := a.commandCtx()
	defer cancel()
	_, err = cli.Get(ctx, "health")
	h := printer.EndpointHealth{Ep: ep, Took: time.Since(start).String()}
	if err == nil || errors.Is(err, rpctypes.ErrPermissionDenied) {
		h.Health = true
	} else {
		h.Error = err.Error()
	}
	if !h.Health {
		return h
	}
	resp, err := cli.AlarmList(ctx)
	switch {
	case err != nil:
		h.Health = false
		h.Error = "Unable to fetch the alarm list"
	case len(resp.Alarms) > 0:
		h.Health = false
		h.Error = "Active Alarm(s): "
		for _, al := range resp.Alarms {
			switch al.Alarm {
			case pb.AlarmType_NOSPACE:
				h.Error += "NOSPACE "
			case pb.AlarmType_CORRUPT:
				h.Error += "CORRUPT "
			case pb.AlarmType_NONE:
				h.Error += "NONE "
			}
		}
	}
	return h
}

// endpointStatus asks each endpoint for its status, in order. A failing
// endpoint is reported on stderr; the others are still printed, and the
// command then exits 1 with no "Error:" line.
func (a *app) endpointStatus(cmd *cobra.Command, o *endpointOptions) error {
	ss, failed, err := eachEndpoint(a, cmd, o, "status",
		func(ctx context.Context, cli *clientv3.Client, ep string) (printer.EndpointStatus, error) {
			resp, err := cli.Status(ctx, ep)
			return printer.EndpointStatus{Ep: ep, Resp: resp}, err
		})
	if err != nil {
		return err
	}
	if err := a.display.EndpointStatus(ss); err != nil {
		return err
	}
	if failed != nil {
		return exitSilently(ExitError)
	}
	return nil
}

// endpointHashKV asks each endpoint for the hash of its key-value history,
// in order; a failing endpoint is reported on stderr, the others are still
// printed, then the command exits 1 with the last failure.
func (a *app) endpointHashKV(cmd *cobra.Command, o *endpointOptions) error {
	hs, failed, err := eachEndpoint(a, cmd, o, "hash",
		func(ctx context.Context, cli *clientv3.Client, ep string) (printer.EndpointHashKV, error) {
			resp, err := cli.HashKV(ctx, ep, o.rev)
			return printer.EndpointHashKV{Ep: ep, Resp: resp}, err
		})
	if err != nil {
		return err
	}
	if err := a.display.EndpointHashKV(hs); err != nil {
		return err
	}
	if failed != nil {
		return exitWith(ExitError, failed)
	}
	return nil
}

// eachEndpoint connects once and runs call against each endpoint in turn
// (--endpoints, or every member's with --cluster), each under
// --command-timeout. A failure is printed as "Failed to get the <what> of
// endpoint <ep> (<err>)" and the next endpoint is still asked. It returns
// the successful answers in order and the last failure; err is a failure to
// connect or to list the endpoints.
func eachEndpoint[R any](a *app, cmd *cobra.Command, o *endpointOptions, what string,
	call func(ctx context.Context, cli *clientv3.Client, ep string) (R, error)) (out []R, failed, err error) {
	cli, err := a.client(cmd)
	if err != nil {
		return nil, nil, err
	}
	defer cli.Close()
	eps, err := a.clusterEndpoints(o)
	if err != nil {
		return nil, nil, err
	}
	for _, ep := range eps {
		ctx, cancel := a.commandCtx()
		r, err := call(ctx, cli, ep)
		cancel()
		if err != nil {
			failed = err
			fmt.Fprintf(a.stderr, "Failed to get the %s of endpoint %s (%v)\n", what, ep, err)
			continue
		}
		out = append(out, r)
	}
	return out, failed, nil
}

// clusterEndpoints is --endpoints, or with --cluster the client URLs of
// every member (asked without credentials: member list needs none).
func (a *app) clusterEndpoints(o *endpointOptions) ([]string, error) {
	if !o.cluster {
		return a.g.endpoints, nil
	}
	eps, err := a.endpoints()
	if err != nil {
		return nil, exitWith(ExitError, err)
	}
	sec := &clientv3.SecureConfig{
		Cert: a.g.cert, Key: a.g.key, Cacert: a.g.cacert,
		InsecureTransport: a.g.insecureTransport, InsecureSkipVerify: a.g.insecureSkipVerify,
	}
	if !a.g.insecureDiscovery {
		sec.ServerName = a.g.discoverySrv
	}
	lg, err := logutil.CreateDefaultZapLogger(zap.InfoLevel)
	if err != nil {
		return nil, exitWith(ExitError, err)
	}
	cfg, err := clientv3.NewClientConfig(&clientv3.ConfigSpec{
		Endpoints:        eps,
		DialTimeout:      a.g.dialTimeout,
		KeepAliveTime:    a.g.keepAliveTime,
		KeepAliveTimeout: a.g.keepAliveTimeout,
		Secure:           sec,
	}, lg)
	if err != nil {
		return nil, exitWith(ExitError, err)
	}
	cli, err := clientv3.New(*cfg)
	if err != nil {
		return nil, exitWith(ExitBadConnection, err)
	}
	defer cli.Close()
	ctx, cancel := a.commandCtx()
	defer cancel()
	members, err := cli.MemberList(ctx)
	if err != nil {
		return nil, exitWith(ExitError, fmt.Errorf("failed to fetch endpoints from etcd cluster member list: %w", err))
	}
	var out []string
	for _, m := range members.Members {
		out = append(out, m.ClientURLs...)
	}
	return out, nil
}
