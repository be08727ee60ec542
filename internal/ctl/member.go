package ctl

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/ctl/printer"
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

	var addURLs string
	var learner bool
	add := &cobra.Command{
		Use:   "add <memberName> [options]",
		Short: "Adds a member into the cluster",
		RunE:  a.run(func(cmd *cobra.Command, args []string) error { return a.memberAdd(cmd, args, addURLs, learner) }),
	}
	add.Flags().StringVar(&addURLs, "peer-urls", "", "comma separated peer URLs for the new member.")
	add.Flags().BoolVar(&learner, "learner", false, "indicates if the new member is raft learner")

	remove := &cobra.Command{
		Use:   "remove <memberID>",
		Short: "Removes a member from the cluster",
		RunE:  a.run(a.memberRemove),
	}

	var updateURLs string
	update := &cobra.Command{
		Use:   "update <memberID> [options]",
		Short: "Updates a member in the cluster",
		RunE:  a.run(func(cmd *cobra.Command, args []string) error { return a.memberUpdate(cmd, args, updateURLs) }),
	}
	update.Flags().StringVar(&updateURLs, "peer-urls", "", "comma separated peer URLs for the updated member.")

	promote := &cobra.Command{
		Use:   "promote <memberID>",
		Short: "Promotes a non-voting member in the cluster",
		Long:  "\nPromotes a non-voting learner member to a voting one in the cluster.\n",
		RunE:  a.run(a.memberPromote),
	}
	cmd.AddCommand(add, remove, update, list, promote)
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
	resp, err := request(a, cmd, rpcError, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberListResponse, error) {
		return cli.MemberList(ctx, opts...)
	})
	if err != nil {
		return err
	}
	return a.display.MemberList(*resp)
}

// memberAdd adds a member (a learner with --learner) and prints the
// settings to start it with. Arguments and URLs are checked before any
// connection, with etcdctl's errors.
func (a *app) memberAdd(cmd *cobra.Command, args []string, peerURLs string, learner bool) error {
	switch {
	case len(args) == 0:
		return exitf(ExitBadArgs, "member name not provided")
	case len(args) > 1:
		msg := "too many arguments"
		for _, arg := range args[1:] {
			if strings.HasPrefix(arg, "http") {
				msg += ", did you mean --peer-urls=" + arg
			}
		}
		return exitf(ExitBadArgs, "%s", msg)
	case peerURLs == "":
		return exitf(ExitBadArgs, "member peer urls not provided")
	}
	urls, err := splitPeerURLs(peerURLs)
	if err != nil {
		return err
	}
	resp, err := request(a, cmd, rpcError, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberAddResponse, error) {
		if learner {
			return cli.MemberAddAsLearner(ctx, urls)
		}
		return cli.MemberAdd(ctx, urls)
	})
	if err != nil {
		return err
	}
	return a.display.MemberAdd(printer.MemberAdd{Name: args[0], PeerURLs: peerURLs, Resp: *resp})
}

func (a *app) memberRemove(cmd *cobra.Command, args []string) error {
	id, err := memberIDArg(args)
	if err != nil {
		return err
	}
	resp, err := request(a, cmd, rpcError, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberRemoveResponse, error) {
		return cli.MemberRemove(ctx, id)
	})
	if err != nil {
		return err
	}
	return a.display.MemberRemove(id, *resp)
}

func (a *app) memberUpdate(cmd *cobra.Command, args []string, peerURLs string) error {
	id, err := memberIDArg(args)
	if err != nil {
		return err
	}
	if peerURLs == "" {
		return exitf(ExitBadArgs, "member peer urls not provided")
	}
	urls, err := splitPeerURLs(peerURLs)
	if err != nil {
		return err
	}
	resp, err := request(a, cmd, rpcError, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberUpdateResponse, error) {
		return cli.MemberUpdate(ctx, id, urls)
	})
	if err != nil {
		return err
	}
	return a.display.MemberUpdate(id, *resp)
}

func (a *app) memberPromote(cmd *cobra.Command, args []string) error {
	id, err := memberIDArg(args)
	if err != nil {
		return err
	}
	resp, err := request(a, cmd, rpcError, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberPromoteResponse, error) {
		return cli.MemberPromote(ctx, id)
	})
	if err != nil {
		return err
	}
	return a.display.MemberPromote(id, *resp)
}

// memberIDArg reads the one hexadecimal member ID argument.
func memberIDArg(args []string) (uint64, error) {
	if len(args) != 1 {
		return 0, exitf(ExitBadArgs, "member ID is not provided")
	}
	id, err := strconv.ParseUint(args[0], 16, 64)
	if err != nil {
		return 0, exitf(ExitBadArgs, "bad member ID arg (%v), expecting ID in Hex", err)
	}
	return id, nil
}

// splitPeerURLs splits --peer-urls on commas and checks each URL as etcd
// does (scheme, host:port, no path); the URLs go to the server as given.
func splitPeerURLs(s string) ([]string, error) {
	urls := strings.Split(s, ",")
	if _, err := types.NewURLs(urls); err != nil {
		return nil, exitWith(ExitError, err)
	}
	return urls, nil
}
