package ctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const txnLong = `Txn reads multiple etcd requests from standard input and applies them as a single atomic transaction.

A transaction consists of three components:
1) a list of conditions,
2) a list of requests to apply if all the conditions are true,
3) a list of requests to apply if any condition is false.

Example interactive stdin usage:

---
etcdctl txn -i
# compares:
mod("key1") > "0"

# success requests (get, put, delete):
put key1 "overwrote-key1"

# failure requests (get, put, delete):
put key1 "created-key1"
put key2 "some extra key"
---

Refer to https://github.com/etcd-io/etcd/blob/main/etcdctl/README.md#txn-options.`

func (a *app) newTxnCommand() *cobra.Command {
	var interactive bool
	cmd := &cobra.Command{
		Use:   "txn [options]",
		Short: "Txn processes all the requests in one transaction",
		Long:  txnLong,
	}
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Input transaction in interactive mode")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) error { return a.txn(cmd, interactive, args) })
	return cmd
}

// txn reads three blank-line-terminated sections from stdin: compares,
// requests on success, requests on failure; then commits them.
func (a *app) txn(cmd *cobra.Command, interactive bool, args []string) error {
	if len(args) != 0 {
		return exitf(ExitBadArgs, "txn command does not accept argument")
	}
	r := bufio.NewReader(a.stdin)
	cli, err := a.client(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	prompt := func(s string) {
		if interactive {
			fmt.Fprintln(a.stdout, s)
		}
	}
	txn := cli.Txn(context.Background())
	prompt("compares:")
	cmps, err := readCompares(r)
	if err != nil {
		return err
	}
	txn = txn.If(cmps...)
	prompt("success requests (get, put, del):")
	thenOps, err := a.readOps(r)
	if err != nil {
		return err
	}
	txn = txn.Then(thenOps...)
	prompt("failure requests (get, put, del):")
	elseOps, err := a.readOps(r)
	if err != nil {
		return err
	}
	txn = txn.Else(elseOps...)
	resp, err := txn.Commit()
	if err != nil {
		return exitWith(ExitError, err)
	}
	return a.display.Txn(*resp)
}

// readLines calls fn for each trimmed line up to the first empty one.
// Input that ends before that empty line is an error (EOF).
func readLines(r *bufio.Reader, fn func(line string) error) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return exitWith(ExitInvalidInput, err)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			return nil
		}
		if err := fn(line); err != nil {
			return err
		}
	}
}

func readCompares(r *bufio.Reader) ([]clientv3.Cmp, error) {
	var cmps []clientv3.Cmp
	err := readLines(r, func(line string) error {
		cmp, err := parseCompare(line)
		if err != nil {
			return exitWith(ExitInvalidInput, err)
		}
		cmps = append(cmps, *cmp)
		return nil
	})
	return cmps, err
}

func (a *app) readOps(r *bufio.Reader) ([]clientv3.Op, error) {
	var ops []clientv3.Op
	err := readLines(r, func(line string) error {
		op, err := a.parseRequest(line)
		if err != nil {
			return err
		}
		ops = append(ops, *op)
		return nil
	})
	return ops, err
}

// parseRequest parses one request line with the get, put and del commands'
// own flags and argument rules.
func (a *app) parseRequest(line string) (*clientv3.Op, error) {
	args, err := argify(line)
	if err != nil {
		return nil, exitWith(ExitInvalidInput, err)
	}
	if len(args) < 2 {
		return nil, exitf(ExitInvalidInput, "invalid txn compare request: %s", line)
	}
	var op *clientv3.Op
	put, putOpts := newPutCmd()
	put.RunE = a.run(func(_ *cobra.Command, args []string) error {
		key, value, opts, err := a.putOp(putOpts, args)
		if err == nil {
			o := clientv3.OpPut(key, value, opts...)
			op = &o
		}
		return err
	})
	get, getOpts := newGetCmd()
	get.RunE = a.run(func(_ *cobra.Command, args []string) error {
		key, opts, err := getOpts.op(args)
		if err == nil {
			o := clientv3.OpGet(key, opts...)
			op = &o
		}
		return err
	})
	del, delOpts := newDelCmd()
	del.RunE = a.run(func(_ *cobra.Command, args []string) error {
		key, opts, err := delOpts.op(args)
		if err == nil {
			o := clientv3.OpDelete(key, opts...)
			op = &o
		}
		return err
	})
	cmds := &cobra.Command{SilenceErrors: true}
	cmds.SetOut(a.stderr)
	cmds.SetErr(a.stderr)
	cmds.CompletionOptions.DisableDefaultCmd = true
	cmds.AddCommand(put, get, del)
	cmds.SetArgs(args)
	if err := cmds.Execute(); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return nil, err
		}
		return nil, exitf(ExitInvalidInput, "invalid txn request: %s", line)
	}
	if op == nil { // e.g. a help request
		return nil, exitf(ExitInvalidInput, "invalid txn request: %s", line)
	}
	return op, nil
}

// parseCompare parses `target("key") op "value"`, target one of ver(sion),
// c(reate), m(od), val(ue) or lease. An operator other than =, !=, < or >
// panics inside the client, as it does in etcdctl.
func parseCompare(line string) (*clientv3.Cmp, error) {
	target, rest, ok := strings.Cut(line, "(")
	if !ok {
		return nil, fmt.Errorf("malformed comparison: %s", line)
	}
	var key, op, val string
	n, serr := fmt.Sscanf(rest, "%q) %s %q", &key, &op, &val)
	if n != 3 {
		return nil, fmt.Errorf("malformed comparison: %s; got %s(%q) %s %q", line, target, key, op, val)
	}
	if serr != nil {
		return nil, fmt.Errorf("malformed comparison: %s (%w)", line, serr)
	}
	var (
		v   int64
		err error
		cmp clientv3.Cmp
	)
	switch target {
	case "ver", "version":
		if v, err = strconv.ParseInt(val, 10, 64); err == nil {
			cmp = clientv3.Compare(clientv3.Version(key), op, v)
		}
	case "c", "create":
		if v, err = strconv.ParseInt(val, 10, 64); err == nil {
			cmp = clientv3.Compare(clientv3.CreateRevision(key), op, v)
		}
	case "m", "mod":
		if v, err = strconv.ParseInt(val, 10, 64); err == nil {
			cmp = clientv3.Compare(clientv3.ModRevision(key), op, v)
		}
	case "val", "value":
		cmp = clientv3.Compare(clientv3.Value(key), op, val)
	case "lease":
		if v, err = strconv.ParseInt(val, 16, 64); err == nil {
			cmp = clientv3.Compare(clientv3.LeaseValue(key), op, v)
		}
	default:
		return nil, fmt.Errorf("malformed comparison: %s (unknown target %s)", line, target)
	}
	if err != nil {
		return nil, fmt.Errorf("invalid txn compare request: %s", line)
	}
	return &cmp, nil
}
