package ctl

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func (a *app) newCompactionCommand() *cobra.Command {
	var physical bool
	cmd := &cobra.Command{
		Use:   "compaction [options] <revision>",
		Short: "Compacts the event history in etcd",
	}
	cmd.Flags().BoolVar(&physical, "physical", false, "'true' to wait for compaction to physically remove all old revisions")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) error { return a.compaction(cmd, physical, args) })
	return cmd
}

// compaction compacts history up to a revision; it prints the same line
// whatever --write-out says.
func (a *app) compaction(cmd *cobra.Command, physical bool, args []string) error {
	if len(args) != 1 {
		return exitf(ExitBadArgs, "compaction command needs 1 argument")
	}
	rev, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return exitWith(ExitError, err)
	}
	var opts []clientv3.CompactOption
	if physical {
		opts = append(opts, clientv3.WithCompactPhysical())
	}
	cli, err := a.client(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandCtx()
	_, err = cli.Compact(ctx, rev, opts...)
	cancel()
	if err != nil {
		return exitWith(ExitError, err)
	}
	fmt.Fprintln(a.stdout, "compacted revision", rev)
	return nil
}
