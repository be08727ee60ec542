package ctl

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// elect's errors, with etcdctl's texts.
var (
	errElectArgs       = errors.New("elect takes one election name argument and an optional proposal argument")
	errElectNoProposal = errors.New("no proposal argument but -l not set")
	errElectListen     = errors.New("proposal given but -l is set")
	errElectLost       = errors.New("elect: observer lost")
	errElectExpired    = errors.New("elect: session expired")
)

func newElectCmd() (*cobra.Command, *bool) {
	listen := false
	cmd := &cobra.Command{
		Use:   "elect <election-name> [proposal]",
		Short: "Observes and participates in leader election",
	}
	cmd.Flags().BoolVarP(&listen, "listen", "l", false, "observation mode")
	return cmd, &listen
}

func (a *app) newElectCommand() *cobra.Command {
	cmd, listen := newElectCmd()
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) error { return a.elect(cmd, *listen, args) })
	return cmd
}

// elect campaigns in the election args[0] with the proposal args[1], or
// with -l observes it, as etcdctl does. Both take a session of the
// recipes' default TTL (60 s).
func (a *app) elect(cmd *cobra.Command, listen bool, args []string) error {
	if len(args) != 1 && len(args) != 2 {
		return exitWith(ExitBadArgs, errElectArgs)
	}
	cli, err := a.client(cmd)
	if err != nil {
		return err
	}
	if len(args) == 1 {
		if !listen {
			return exitWith(ExitBadArgs, errElectNoProposal)
		}
		return a.observe(cli, args[0])
	}
	if listen {
		return exitWith(ExitBadArgs, errElectListen)
	}
	return a.campaign(cli, args[0], args[1])
}

// observe prints the leader (once there is one) and every change, until
// SIGINT or SIGTERM (exit 0) or until the observation fails ("elect:
// observer lost").
func (a *app) observe(cli *clientv3.Client, name string) error {
	s, err := concurrency.NewSession(cli)
	if err != nil {
		return err
	}
	e := concurrency.NewElection(s, name)
	ctx, _ := onSignal()
	var perr error
	for resp := range e.Observe(ctx) {
		if err := a.display.Get(resp); err != nil && perr == nil {
			perr = err
		}
	}
	if ctx.Err() == nil {
		return errElectLost
	}
	return perr
}

// campaign waits to lead, prints the leader's key and value, and leads
// until SIGINT or SIGTERM (then resigns and exits 0) or until the
// session's lease is gone ("elect: session expired"). A signal while
// waiting ends the wait ("context canceled").
func (a *app) campaign(cli *clientv3.Client, name, proposal string) error {
	s, err := concurrency.NewSession(cli)
	if err != nil {
		return err
	}
	e := concurrency.NewElection(s, name)
	ctx, signalled := onSignal()
	if err := e.Campaign(ctx, proposal); err != nil {
		return err
	}
	resp, err := cli.Get(ctx, e.Key())
	if err != nil {
		return err
	}
	if err := a.display.Get(*resp); err != nil {
		return err
	}
	select {
	case <-signalled:
	case <-s.Done():
		return errElectExpired
	}
	return e.Resign(context.TODO())
}
