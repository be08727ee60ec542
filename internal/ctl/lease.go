package ctl

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/ctl/printer"
)

// newLeaseCommand is `lease grant|revoke|timetolive|list|keep-alive`, as
// etcdctl 3.6.16: argument errors exit 128 before any connection; grant and
// revoke run under --command-timeout, the others without a deadline (and a
// failure of theirs exits 2).
func (a *app) newLeaseCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lease <subcommand>",
		Short: "Lease related commands",
	}
	grant := &cobra.Command{
		Use:   "grant <ttl>",
		Short: "Creates leases",
		RunE:  a.run(a.leaseGrant),
	}
	revoke := &cobra.Command{
		Use:   "revoke <leaseID>",
		Short: "Revokes leases",
		RunE:  a.run(a.leaseRevoke),
	}
	var keys bool
	ttl := &cobra.Command{
		Use:   "timetolive <leaseID> [options]",
		Short: "Get lease information",
		RunE:  a.run(func(cmd *cobra.Command, args []string) error { return a.leaseTimeToLive(cmd, args, keys) }),
	}
	ttl.Flags().BoolVar(&keys, "keys", false, "Get keys attached to this lease")
	list := &cobra.Command{
		Use:   "list",
		Short: "List all active leases",
		RunE:  a.run(a.leaseList),
	}
	var once bool
	keepAlive := &cobra.Command{
		Use:   "keep-alive [options] <leaseID>",
		Short: "Keeps leases alive (renew)",
		RunE:  a.run(func(cmd *cobra.Command, args []string) error { return a.leaseKeepAlive(cmd, args, once) }),
	}
	keepAlive.Flags().BoolVar(&once, "once", false, "Resets the keep-alive time to its original value and cobrautl.Exits immediately")
	cmd.AddCommand(grant, revoke, ttl, list, keepAlive)
	return cmd
}

// leaseID parses a lease ID argument: hexadecimal, as etcdctl prints them.
func leaseID(arg string) (clientv3.LeaseID, error) {
	id, err := strconv.ParseInt(arg, 16, 64)
	if err != nil {
		return 0, exitf(ExitBadArgs, "bad lease ID arg (%w), expecting ID in Hex", err)
	}
	return clientv3.LeaseID(id), nil
}

func (a *app) leaseGrant(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return exitf(ExitBadArgs, "lease grant command needs TTL argument")
	}
	ttl, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return exitf(ExitBadArgs, "bad TTL (%w)", err)
	}
	resp, err := request(a, cmd, func(err error) error { return exitf(ExitError, "failed to grant lease (%w)", err) },
		func(ctx context.Context, cli *clientv3.Client) (*clientv3.LeaseGrantResponse, error) {
			return cli.Grant(ctx, ttl)
		})
	if err != nil {
		return err
	}
	return a.display.LeaseGrant(*resp)
}

func (a *app) leaseRevoke(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return exitf(ExitBadArgs, "lease revoke command needs 1 argument")
	}
	id, err := leaseID(args[0])
	if err != nil {
		return err
	}
	resp, err := request(a, cmd, func(err error) error { return exitf(ExitError, "failed to revoke lease (%w)", err) },
		func(ctx context.Context, cli *clientv3.Client) (*clientv3.LeaseRevokeResponse, error) {
			return cli.Revoke(ctx, id)
		})
	if err != nil {
		return err
	}
	return a.display.LeaseRevoke(id, *resp)
}

func (a *app) leaseTimeToLive(cmd *cobra.Command, args []string, keys bool) error {
	if len(args) != 1 {
		return exitf(ExitBadArgs, "lease timetolive command needs lease ID as argument")
	}
	id, err := leaseID(args[0])
	if err != nil {
		return err
	}
	var opts []clientv3.LeaseOption
	if keys {
		opts = append(opts, clientv3.WithAttachedKeys())
	}
	cli, err := a.client(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	resp, err := cli.TimeToLive(context.TODO(), id, opts...)
	if err != nil {
		return exitWith(ExitBadConnection, err)
	}
	return a.display.LeaseTimeToLive(*resp, keys)
}

// leaseList lists the leases; arguments are ignored, as in etcdctl.
func (a *app) leaseList(cmd *cobra.Command, _ []string) error {
	cli, err := a.client(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	resp, err := cli.Leases(context.TODO())
	if err != nil {
		return exitWith(ExitBadConnection, err)
	}
	return a.display.LeaseList(*resp)
}

// leaseKeepAlive renews the lease once, or until it expires or is revoked
// (the simple format then says so).
func (a *app) leaseKeepAlive(cmd *cobra.Command, args []string, once bool) error {
	if len(args) != 1 {
		return exitf(ExitBadArgs, "lease keep-alive command needs lease ID as argument")
	}
	id, err := leaseID(args[0])
	if err != nil {
		return err
	}
	cli, err := a.client(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	if once {
		resp, err := cli.KeepAliveOnce(context.TODO(), id)
		if err != nil {
			return exitWith(ExitBadConnection, err)
		}
		return a.display.LeaseKeepAlive(*resp)
	}
	respc, err := cli.KeepAlive(context.TODO(), id)
	if err != nil {
		return exitWith(ExitBadConnection, err)
	}
	for resp := range respc {
		if err := a.display.LeaseKeepAlive(*resp); err != nil {
			return err
		}
	}
	if _, ok := a.display.(*printer.Simple); ok {
		fmt.Fprintf(a.stdout, "lease %016x expired or revoked.\n", id)
	}
	return nil
}
