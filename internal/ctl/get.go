package ctl

import (
	"context"
	"strings"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/ctl/printer"
)

// getOptions are get's flags.
type getOptions struct {
	consistency    string
	order          string
	sortBy         string
	limit          int64
	rev            int64
	prefix         bool
	fromKey        bool
	keysOnly       bool
	countOnly      bool
	printValueOnly bool
	minCreateRev   int64
	maxCreateRev   int64
	minModRev      int64
	maxModRev      int64
}

// newGetCmd declares `get` and its flags, without a body: txn reuses it to
// parse its get lines.
func newGetCmd() (*cobra.Command, *getOptions) {
	o := &getOptions{}
	cmd := &cobra.Command{
		Use:   "get [options] <key> [range_end]",
		Short: "Gets the key or a range of keys",
	}
	f := cmd.Flags()
	f.StringVar(&o.consistency, "consistency", "l", "Linearizable(l) or Serializable(s)")
	f.StringVar(&o.order, "order", "", "Order of results; ASCEND or DESCEND (ASCEND by default)")
	f.StringVar(&o.sortBy, "sort-by", "", "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION")
	f.Int64Var(&o.limit, "limit", 0, "Maximum number of results")
	f.BoolVar(&o.prefix, "prefix", false, "Get keys with matching prefix")
	f.BoolVar(&o.fromKey, "from-key", false, "Get keys that are greater than or equal to the given key using byte compare")
	f.Int64Var(&o.rev, "rev", 0, "Specify the kv revision")
	f.BoolVar(&o.keysOnly, "keys-only", false, "Get only the keys")
	f.BoolVar(&o.countOnly, "count-only", false, "Get only the count")
	f.BoolVar(&o.printValueOnly, "print-value-only", false, `Only write values when using the "simple" output format`)
	f.Int64Var(&o.minCreateRev, "min-create-rev", 0, "Minimum create revision")
	f.Int64Var(&o.maxCreateRev, "max-create-rev", 0, "Maximum create revision")
	f.Int64Var(&o.minModRev, "min-mod-rev", 0, "Minimum modification revision")
	f.Int64Var(&o.maxModRev, "max-mod-rev", 0, "Maximum modification revision")
	return cmd, o
}

func (a *app) newGetCommand() *cobra.Command {
	cmd, o := newGetCmd()
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) error { return a.get(cmd, o, args) })
	return cmd
}

func (a *app) get(cmd *cobra.Command, o *getOptions, args []string) error {
	key, opts, err := o.op(args)
	if err != nil {
		return err
	}
	resp, err := request(a, cmd, rpcError, func(ctx context.Context, cli *clientv3.Client) (*clientv3.GetResponse, error) {
		return cli.Get(ctx, key, opts...)
	})
	if err != nil {
		return err
	}
	if o.countOnly && a.display.Format() != "fields" {
		return exitf(ExitBadArgs, "--count-only is only for `--write-out=fields`")
	}
	if o.printValueOnly {
		simple, ok := a.display.(*printer.Simple)
		if !ok {
			return exitf(ExitBadArgs, "print-value-only is only for `--write-out=simple`")
		}
		simple.ValueOnly = true
	}
	return a.display.Get(*resp)
}

// op checks get's arguments and turns them into a key and options.
func (o *getOptions) op(args []string) (string, []clientv3.OpOption, error) {
	if len(args) == 0 {
		return "", nil, exitf(ExitBadArgs, "get command needs one argument as key and an optional argument as range_end")
	}
	if o.prefix && o.fromKey {
		return "", nil, exitf(ExitBadArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one")
	}
	if o.keysOnly && o.countOnly {
		return "", nil, exitf(ExitBadArgs, "`--keys-only` and `--count-only` cannot be set at the same time, choose one")
	}
	var opts []clientv3.OpOption
	switch o.consistency {
	case "s":
		opts = append(opts, clientv3.WithSerializable())
	case "l":
	default:
		return "", nil, exitf(ExitBadFeature, "unknown consistency flag %q", o.consistency)
	}
	key := args[0]
	if len(args) > 1 {
		if o.prefix || o.fromKey {
			return "", nil, exitf(ExitBadArgs, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
		}
		opts = append(opts, clientv3.WithRange(args[1]))
	}
	opts = append(opts, clientv3.WithLimit(o.limit))
	if o.rev > 0 {
		opts = append(opts, clientv3.WithRev(o.rev))
	}

	order := clientv3.SortNone
	switch strings.ToUpper(o.order) {
	case "ASCEND":
		order = clientv3.SortAscend
	case "DESCEND":
		order = clientv3.SortDescend
	case "":
	default:
		return "", nil, exitf(ExitBadFeature, "bad sort order %v", o.order)
	}
	target := clientv3.SortByKey
	switch strings.ToUpper(o.sortBy) {
	case "CREATE":
		target = clientv3.SortByCreateRevision
	case "KEY":
		target = clientv3.SortByKey
	case "MODIFY":
		target = clientv3.SortByModRevision
	case "VALUE":
		target = clientv3.SortByValue
	case "VERSION":
		target = clientv3.SortByVersion
	case "":
	default:
		return "", nil, exitf(ExitBadFeature, "bad sort target %v", o.sortBy)
	}
	opts = append(opts, clientv3.WithSort(target, order))

	if o.prefix {
		if key == "" {
			key = "\x00"
			opts = append(opts, clientv3.WithFromKey())
		} else {
			opts = append(opts, clientv3.WithPrefix())
		}
	}
	if o.fromKey {
		if key == "" {
			key = "\x00"
		}
		opts = append(opts, clientv3.WithFromKey())
	}
	if o.keysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	if o.countOnly {
		opts = append(opts, clientv3.WithCountOnly())
	}
	if o.minCreateRev > 0 {
		opts = append(opts, clientv3.WithMinCreateRev(o.minCreateRev))
	}
	if o.maxCreateRev > 0 {
		opts = append(opts, clientv3.WithMaxCreateRev(o.maxCreateRev))
	}
	if o.minModRev > 0 {
		opts = append(opts, clientv3.WithMinModRev(o.minModRev))
	}
	if o.maxModRev > 0 {
		opts = append(opts, clientv3.WithMaxModRev(o.maxModRev))
	}
	return key, opts, nil
}
