package ctlv2

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"

	"github.com/urfave/cli"
	client "go.etcd.io/etcd/client/v2"
)

// interrupt returns a context ended by Ctrl-C (or Env.Interrupt), after
// which watch, exec-watch and cluster-health --forever exit 0.
func (r *runner) interrupt() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := r.env.Interrupt
	var sig chan os.Signal
	if ch == nil {
		sig = make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
	}
	go func() {
		select {
		case <-ch:
		case <-sig:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx, func() {
		if sig != nil {
			signal.Stop(sig)
		}
		cancel()
	}
}

// watchEach watches key with opts and hands each event to each, until
// each returns done or an error, Ctrl-C (exit 0) or a watch failure
// (printed, exit 4).
func (r *runner) watchEach(c *cli.Context, key string, opts *client.WatcherOptions,
	each func(resp *client.Response) (done bool, err error)) error {
	ki, err := r.keysAPI(c)
	if err != nil {
		return err
	}
	w := ki.Watcher(key, opts)
	ctx, stop := r.interrupt()
	defer stop()
	for {
		resp, err := w.Next(ctx)
		if ctx.Err() != nil {
			return nil // Ctrl-C
		}
		if err != nil {
			return r.fail(ExitServerError, err)
		}
		if done, err := each(resp); done || err != nil {
			return err
		}
	}
}

func (r *runner) watchCommand() cli.Command {
	return cli.Command{
		Name:      "watch",
		Usage:     "watch a key for changes",
		ArgsUsage: "<key>",
		Flags: []cli.Flag{
			cli.BoolFlag{Name: "forever, f", Usage: "forever watch a key until CTRL+C"},
			cli.IntFlag{Name: "after-index", Value: 0, Usage: "watch after the given index"},
			cli.BoolFlag{Name: "recursive, r", Usage: "returns all values for key and child keys"},
		},
		Action: func(c *cli.Context) error {
			key, err := r.keyArg(c)
			if err != nil {
				return err
			}
			recursive, forever := c.Bool("recursive"), c.Bool("forever")
			opts := &client.WatcherOptions{AfterIndex: uint64(c.Int("after-index")), Recursive: recursive}
			return r.watchEach(c, key, opts, func(resp *client.Response) (bool, error) {
				if resp.Node.Dir {
					return false, nil
				}
				if recursive {
					r.outf("[%s] %s\n", resp.Action, resp.Node.Key)
				}
				r.printResponse(c, resp)
				return !forever, nil
			})
		},
	}
}

func (r *runner) execWatchCommand() cli.Command {
	return cli.Command{
		Name:      "exec-watch",
		Usage:     "watch a key for changes and exec an executable",
		ArgsUsage: "<key> <command> [args...]",
		Flags: []cli.Flag{
			cli.IntFlag{Name: "after-index", Value: 0, Usage: "watch after the given index"},
			cli.BoolFlag{Name: "recursive, r", Usage: "watch all values for key and child keys"},
		},
		Action: func(c *cli.Context) error {
			args := c.Args()
			if len(args) < 2 {
				return r.fail(ExitBadArgs, errors.New("key and command to exec required"))
			}
			// "<key> -- <command>..." or, without a "--" after the first
			// word, "<command>... <key>".
			key, cmdArgs := args[len(args)-1], args[:len(args)-1]
			for i, a := range args {
				if a == "--" && i != 0 {
					key, cmdArgs = args[0], args[2:]
					break
				}
			}
			index := 0
			if n := c.Int("after-index"); n != 0 {
				index = n + 1
			}
			opts := &client.WatcherOptions{AfterIndex: uint64(index), Recursive: c.Bool("recursive")}
			return r.watchEach(c, key, opts, func(resp *client.Response) (bool, error) {
				if resp.Node.Dir {
					fmt.Fprintf(r.env.Stderr, "Ignored dir %s change\n", resp.Node.Key)
					return false, nil
				}
				if len(cmdArgs) == 0 {
					return true, r.fail(ExitBadArgs, errors.New("key and command to exec required"))
				}
				cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
				cmd.Env = append(append([]string{}, r.environ()...),
					"ETCD_WATCH_ACTION="+resp.Action,
					fmt.Sprintf("ETCD_WATCH_MODIFIED_INDEX=%d", resp.Node.ModifiedIndex),
					"ETCD_WATCH_KEY="+resp.Node.Key,
					"ETCD_WATCH_VALUE="+resp.Node.Value)
				cmd.Stdout, cmd.Stderr = r.env.Stdout, r.env.Stderr
				// The command runs while the watch goes on, as in etcdctl.
				if err := cmd.Start(); err != nil {
					fmt.Fprint(r.env.Stderr, err.Error())
					return true, &exit{ExitBadArgs}
				}
				go func() { _ = cmd.Wait() }()
				return false, nil
			})
		},
	}
}
