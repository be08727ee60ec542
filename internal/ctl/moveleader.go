package ctl

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/internal/ctl/printer"
)

func (a *app) newMoveLeaderCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "move-leader <transferee-member-id>",
		Short: "Transfers leadership to another etcd cluster member.",
		RunE:  a.run(a.moveLeader),
	}
}

// moveLeader is etcdctl's move-leader: it finds the leader among the
// endpoints (by Status) and asks it to hand leadership to the member whose
// hex ID is the argument.
func (a *app) moveLeader(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return exitf(ExitBadArgs, "move-leader command needs 1 argument")
	}
	target, err := strconv.ParseUint(args[0], 16, 64)
	if err != nil {
		return exitWith(ExitBadArgs, err)
	}
	if err := a.initDisplay(); err != nil {
		return err
	}
	spec, err := a.clientSpec(cmd)
	if err != nil {
		return err
	}
	eps := spec.Endpoints
	ctx, cancel := a.commandCtx()
	defer cancel()
	for _, ep := range eps {
		one := *spec
		one.Endpoints = []string{ep}
		cli, err := a.newClient(&one)
		if err != nil {
			return err
		}
		st, err := cli.Status(ctx, ep)
		if err != nil {
			cli.Close()
			return exitWith(ExitError, err)
		}
		if st.Header.GetMemberId() != st.Leader {
			cli.Close()
			continue
		}
		resp, err := cli.MoveLeader(ctx, target)
		cli.Close()
		if err != nil {
			return exitWith(ExitError, err)
		}
		// As etcdctl, a format that cannot show the result fails only
		// after the transfer.
		mp, ok := a.display.(printer.MoveLeaderPrinter)
		if !ok {
			return exitWith(ExitBadFeature, &printer.UnsupportedError{Format: a.display.Format()})
		}
		return mp.MoveLeader(st.Leader, target, *resp)
	}
	return exitWith(ExitBadArgs, fmt.Errorf("no leader endpoint given at %v", eps))
}
