package ctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// lock's errors, with etcdctl's texts.
var (
	errLockArgs     = errors.New("lock takes a lock name argument and an optional command to execute")
	errLockLost     = errors.New("lock lost on init")
	errLockSessionX = errors.New("session expired")
)

func newLockCmd() (*cobra.Command, *int) {
	ttl := 10
	cmd := &cobra.Command{
		Use:   "lock <lockname> [exec-command arg1 arg2 ...]",
		Short: "Acquires a named lock",
	}
	cmd.Flags().IntVarP(&ttl, "ttl", "", ttl, "timeout for session")
	return cmd, &ttl
}

func (a *app) newLockCommand() *cobra.Command {
	cmd, ttl := newLockCmd()
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) error { return a.lock(cmd, *ttl, args) })
	return cmd
}

// lock holds the lock args[0] (a concurrency.Mutex on a session of ttl
// seconds), as etcdctl does: with a command, it runs the command while
// holding the lock (ETCD_LOCK_KEY and ETCD_LOCK_REV in its environment),
// unlocks and exits with the command's status; without one, it prints the
// lock's key and holds the lock until SIGINT or SIGTERM (then unlocks and
// exits 0) or until the session's lease is gone ("session expired").
// A signal while waiting for the lock ends the wait ("context canceled").
func (a *app) lock(cmd *cobra.Command, ttl int, args []string) error {
	if len(args) == 0 {
		return exitWith(ExitBadArgs, errLockArgs)
	}
	cli, err := a.client(cmd)
	if err != nil {
		return err
	}
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(ttl))
	if err != nil {
		return err
	}
	m := concurrency.NewMutex(s, args[0])
	ctx, signalled := onSignal()
	if err := m.Lock(ctx); err != nil {
		return err
	}
	if len(args) > 1 {
		return a.runLocked(m, args[1:])
	}
	resp, err := cli.Get(ctx, m.Key())
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 {
		return errLockLost
	}
	if err := a.display.Get(*resp); err != nil {
		return err
	}
	select {
	case <-signalled:
		return m.Unlock(context.TODO())
	case <-s.Done():
		return errLockSessionX
	}
}

// runLocked runs argv while m is held, then unlocks. The command's failure
// decides the exit code: its status, or 255 when a signal killed it
// (etcdctl exits with the status -1 that Go reports then).
func (a *app) runLocked(m *concurrency.Mutex, argv []string) error {
	c := exec.Command(argv[0], argv[1:]...)
	c.Env = append([]string{
		"ETCD_LOCK_KEY=" + m.Key(),
		fmt.Sprintf("ETCD_LOCK_REV=%d", m.Header().Revision),
	}, a.environ...)
	c.Stdout, c.Stderr = a.stdout, a.stderr
	runErr := c.Run()
	unlockErr := m.Unlock(context.TODO())
	if runErr != nil {
		var ee *exec.ExitError
		if errors.As(runErr, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
				return exitWith(exitStatus(ws.ExitStatus()), runErr)
			}
		}
		return runErr
	}
	return unlockErr
}

// exitStatus is the process exit code os.Exit(code) gives.
func exitStatus(code int) int { return code & 0xff }

// onSignal returns a context cancelled by the first SIGINT or SIGTERM and a
// channel closed then; the signal no longer ends the process.
func onSignal() (context.Context, <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	signalled := make(chan struct{})
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigc
		cancel()
		close(signalled)
	}()
	return ctx, signalled
}
