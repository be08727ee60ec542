package ctl

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// putOptions are put's flags.
type putOptions struct {
	lease       string
	prevKV      bool
	ignoreValue bool
	ignoreLease bool
}

const putLong = `
Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.
`

// newPutCmd declares `put` and its flags, without a body (txn reuses it).
func newPutCmd() (*cobra.Command, *putOptions) {
	o := &putOptions{}
	cmd := &cobra.Command{
		Use:   "put [options] <key> <value> (<value> can also be given from stdin)",
		Short: "Puts the given key into the store",
		Long:  putLong,
	}
	f := cmd.Flags()
	f.StringVar(&o.lease, "lease", "0", "lease ID (in hexadecimal) to attach to the key")
	f.BoolVar(&o.prevKV, "prev-kv", false, "return the previous key-value pair before modification")
	f.BoolVar(&o.ignoreValue, "ignore-value", false, "updates the key using its current value")
	f.BoolVar(&o.ignoreLease, "ignore-lease", false, "updates the key using its current lease")
	return cmd, o
}

func (a *app) newPutCommand() *cobra.Command {
	cmd, o := newPutCmd()
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) error { return a.put(cmd, o, args) })
	return cmd
}

func (a *app) put(cmd *cobra.Command, o *putOptions, args []string) error {
	key, value, opts, err := a.putOp(o, args)
	if err != nil {
		return err
	}
	resp, err := request(a, cmd, rpcError, func(ctx context.Context, cli *clientv3.Client) (*clientv3.PutResponse, error) {
		return cli.Put(ctx, key, value, opts...)
	})
	if err != nil {
		return err
	}
	return a.display.Put(*resp)
}

// putOp checks put's arguments; without a value argument (and without
// --ignore-value) the value is all of stdin.
func (a *app) putOp(o *putOptions, args []string) (key, value string, opts []clientv3.OpOption, err error) {
	const needArgs = "put command needs 1 argument and input from stdin or 2 arguments"
	if len(args) == 0 {
		return "", "", nil, exitf(ExitBadArgs, needArgs)
	}
	key = args[0]
	if o.ignoreValue && len(args) > 1 {
		return "", "", nil, exitf(ExitBadArgs, "put command needs only 1 argument when 'ignore-value' is set")
	}
	if !o.ignoreValue {
		if value, err = a.argOrStdin(args, 1); err != nil {
			return "", "", nil, exitf(ExitBadArgs, needArgs)
		}
	}
	id, err := strconv.ParseInt(o.lease, 16, 64)
	if err != nil {
		return "", "", nil, exitf(ExitBadArgs, "bad lease ID (%v), expecting ID in Hex", err)
	}
	if id != 0 {
		opts = append(opts, clientv3.WithLease(clientv3.LeaseID(id)))
	}
	if o.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if o.ignoreValue {
		opts = append(opts, clientv3.WithIgnoreValue())
	}
	if o.ignoreLease {
		opts = append(opts, clientv3.WithIgnoreLease())
	}
	return key, value, opts, nil
}
