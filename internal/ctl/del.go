package ctl

import (
	"context"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// delOptions are del's flags.
type delOptions struct {
	prefix  bool
	prevKV  bool
	fromKey bool
	rng     bool
}

// newDelCmd declares `del` and its flags, without a body (txn reuses it).
func newDelCmd() (*cobra.Command, *delOptions) {
	o := &delOptions{}
	cmd := &cobra.Command{
		Use:   "del [options] <key> [range_end]",
		Short: "Removes the specified key or range of keys [key, range_end)",
	}
	f := cmd.Flags()
	f.BoolVar(&o.prefix, "prefix", false, "delete keys with matching prefix")
	f.BoolVar(&o.prevKV, "prev-kv", false, "return deleted key-value pairs")
	f.BoolVar(&o.fromKey, "from-key", false, "delete keys that are greater than or equal to the given key using byte compare")
	// Accepted for compatibility; etcdctl 3.6.16 deletes the same keys with or without it.
	f.BoolVar(&o.rng, "range", false, "delete range of keys")
	return cmd, o
}

func (a *app) newDelCommand() *cobra.Command {
	cmd, o := newDelCmd()
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) error { return a.del(cmd, o, args) })
	return cmd
}

func (a *app) del(cmd *cobra.Command, o *delOptions, args []string) error {
	key, opts, err := o.op(args)
	if err != nil {
		return err
	}
	resp, err := request(a, cmd, rpcError, func(ctx context.Context, cli *clientv3.Client) (*clientv3.DeleteResponse, error) {
		return cli.Delete(ctx, key, opts...)
	})
	if err != nil {
		return err
	}
	return a.display.Del(*resp)
}

// op checks del's arguments and turns them into a key and options.
func (o *delOptions) op(args []string) (string, []clientv3.OpOption, error) {
	if len(args) == 0 || len(args) > 2 {
		return "", nil, exitf(ExitBadArgs, "del command needs one argument as key and an optional argument as range_end")
	}
	if o.prefix && o.fromKey {
		return "", nil, exitf(ExitBadArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one")
	}
	var opts []clientv3.OpOption
	key := args[0]
	if len(args) > 1 {
		if o.prefix || o.fromKey {
			return "", nil, exitf(ExitBadArgs, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
		}
		opts = append(opts, clientv3.WithRange(args[1]))
	}
	if o.prefix {
		if key == "" {
			key = "\x00"
			opts = append(opts, clientv3.WithFromKey())
		} else {
			opts = append(opts, clientv3.WithPrefix())
		}
	}
	if o.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if o.fromKey {
		if key == "" {
			key = "\x00"
		}
		opts = append(opts, clientv3.WithFromKey())
	}
	return key, opts, nil
}
