package ctl

import (
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func (a *app) newMemberCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member <subcommand>",
		Short: "Membership related commands",
	}
	var consistency string
	list := &cobra.Command{
		Use:   "list",
		Short: "Lists all members in the cluster",
		Long: `When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.
The items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.
`,
		RunE: a.run(func(cmd *cobra.Command, _ []string) error { return a.memberList(cmd, consistency) }),
	}
	list.Flags().StringVar(&consistency, "consistency", "l", "Linearizable(l) or Serializable(s)")
	cmd.AddCommand(list)
	return cmd
}

// memberList prints the cluster's members. Arguments are ignored, as in
// etcdctl.
func (a *app) memberList(cmd *cobra.Command, consistency string) error {
	var opts []clientv3.OpOption
	switch consistency {
	case "s":
		opts = append(opts, clientv3.WithSerializable())
	case "l":
	default:
		// etcdctl 3.6.16 names the default, not the value given.
		return exitf(ExitBadFeature, "unknown consistency flag %q", "l")
	}
	cli, err := a.client(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := a.commandCtx()
	resp, err := cli.MemberList(ctx, opts...)
	cancel()
	if err != nil {
		return exitWith(ExitError, err)
	}
	return a.display.MemberList(*resp)
}
