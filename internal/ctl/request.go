package ctl

import (
	"context"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// request is the body shared by the one-shot commands: connect with the
// global flags (a.client, whose errors are returned as they are), run call
// under --command-timeout, close the client. A failed call is returned as
// fail(err); rpcError, exit 1 with the error as is, is etcdctl's usual.
func request[R any](a *app, cmd *cobra.Command, fail func(error) error,
	call func(ctx context.Context, cli *clientv3.Client) (R, error)) (R, error) {
	var zero R
	cli, err := a.client(cmd)
	if err != nil {
		return zero, err
	}
	defer cli.Close()
	ctx, cancel := a.commandCtx()
	resp, err := call(ctx, cli)
	cancel()
	if err != nil {
		return zero, fail(err)
	}
	return resp, nil
}

// rpcError ends a command whose request failed: exit 1, "Error: <err>".
func rpcError(err error) error { return exitWith(ExitError, err) }
