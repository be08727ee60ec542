package ctl

import (
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func (a *app) newAlarmCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alarm <subcommand>",
		Short: "Alarm related commands",
	}
	disarm := &cobra.Command{
		Use:   "disarm",
		Short: "Disarms all alarms",
		RunE:  a.run(func(cmd *cobra.Command, args []string) error { return a.alarm(cmd, args, true) }),
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "Lists all alarms",
		RunE:  a.run(func(cmd *cobra.Command, args []string) error { return a.alarm(cmd, args, false) }),
	}
	cmd.AddCommand(disarm, list)
	return cmd
}

// alarm lists the active alarms or, with disarm, deactivates every one of
// them and prints those it deactivated. The client disarms alarm by alarm
// and answers without a header.
func (a *app) alarm(cmd *cobra.Command, args []string, disarm bool) error {
	if len(args) != 0 {
		if disarm {
			return exitf(ExitBadArgs, "alarm disarm command accepts no arguments")
		}
		return exitf(ExitBadArgs, "alarm list command accepts no arguments")
	}
	cli, err := a.client(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandCtx()
	defer cancel()
	if disarm {
		resp, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{})
		if err != nil {
			return exitWith(ExitError, err)
		}
		return a.display.Alarm(*resp)
	}
	resp, err := cli.AlarmList(ctx)
	if err != nil {
		return exitWith(ExitError, err)
	}
	return a.display.Alarm(*resp)
}
