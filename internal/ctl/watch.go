package ctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/ctl/printer"
)

// watch's argument errors, with etcdctl's texts.
var (
	errBadArgsNum              = errors.New("bad number of arguments")
	errBadArgsNumConflictEnv   = errors.New("bad number of arguments (found conflicting environment key)")
	errBadArgsNumSeparator     = errors.New("bad number of arguments (found separator --, but no commands)")
	errBadArgsInteractiveWatch = errors.New("args[0] must be 'watch' for interactive calls")
)

// watchOptions are watch's flags. In interactive mode each `watch` line
// sets prefix, rev and prevKV anew; progress keeps the command line's value.
type watchOptions struct {
	interactive bool
	prefix      bool
	rev         int64
	prevKV      bool
	progress    bool
}

func watchFlags(fs *pflag.FlagSet, o *watchOptions) {
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "Interactive mode")
	fs.BoolVar(&o.prefix, "prefix", false, "Watch on a prefix if prefix is set")
	fs.Int64Var(&o.rev, "rev", 0, "Revision to start watching")
	fs.BoolVar(&o.prevKV, "prev-kv", false, "get the previous key-value pair before the event happens")
	fs.BoolVar(&o.progress, "progress-notify", false, "get periodic watch progress notification from server")
}

func newWatchCmd() (*cobra.Command, *watchOptions) {
	o := &watchOptions{}
	cmd := &cobra.Command{
		Use:   "watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]",
		Short: "Watches events stream on keys or prefixes",
	}
	watchFlags(cmd.Flags(), o)
	return cmd, o
}

func (a *app) newWatchCommand() *cobra.Command {
	cmd, o := newWatchCmd()
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) error { return a.watch(cmd, o, args) })
	return cmd
}

// watch follows etcdctl: the key may come from ETCDCTL_WATCH_KEY (and
// ETCDCTL_WATCH_RANGE_END), a command after `--` runs once per event with
// the event in ETCD_WATCH_* variables, and the command ends (exit 5) only
// when the server cancels the watch.
func (a *app) watch(cmd *cobra.Command, o *watchOptions, args []string) error {
	envKey, envRange := a.getenv("ETCDCTL_WATCH_KEY"), a.getenv("ETCDCTL_WATCH_RANGE_END")
	if envKey == "" && envRange != "" {
		return exitf(ExitBadArgs, "ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=%q", envRange)
	}
	// As etcdctl: ETCDCTL_WATCH_KEY and ETCDCTL_WATCH_RANGE_END are known to
	// the environment check (no "unrecognized" warning; listed by --debug).
	fs := cmd.InheritedFlags()
	fs.AddFlag(&pflag.Flag{Name: "watch-key", Value: discardValue{}})
	fs.AddFlag(&pflag.Flag{Name: "watch-range-end", Value: discardValue{}})
	if o.interactive {
		return a.watchInteractive(cmd, o, envKey, envRange)
	}
	watchArgs, execArgs, err := parseWatchArgs(a.osArgs(), args, envKey, envRange, nil)
	if err != nil {
		return exitWith(ExitBadArgs, err)
	}
	cli, err := a.client(cmd)
	if err != nil {
		return err
	}
	wc, err := a.watchChan(cli, *o, watchArgs)
	if err != nil {
		cli.Close()
		return exitWith(ExitBadArgs, err)
	}
	if err := a.printWatch(cli, wc, execArgs); err != nil {
		cli.Close()
		return err
	}
	if err := cli.Close(); err != nil {
		return exitWith(ExitBadConnection, err)
	}
	return exitf(ExitInterrupted, "watch is canceled by the server")
}

// osArgs is the command line as etcdctl sees it in os.Args: the program
// name, then the arguments.
func (a *app) osArgs() []string { return append([]string{cliName}, a.args...) }

// watchInteractive reads `watch ...` and `progress` lines from stdin; each
// watch prints on its own goroutine until the process ends.
func (a *app) watchInteractive(cmd *cobra.Command, o *watchOptions, envKey, envRange string) error {
	cli, err := a.client(cmd)
	if err != nil {
		return err
	}
	defer cli.Close()
	type line struct {
		s   string
		err error
	}
	lines := make(chan line)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		r := bufio.NewReader(a.stdin)
		for {
			s, err := r.ReadString('\n')
			select {
			case lines <- line{s, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	fatal := make(chan error, 1)
	for {
		var l line
		select {
		case l = <-lines:
		case err := <-fatal:
			return err
		}
		if l.err != nil {
			return exitf(ExitInvalidInput, "error reading watch request line: %v", l.err)
		}
		s := strings.TrimSuffix(l.s, "\n")
		args, err := argify(s)
		if err != nil {
			if u := errors.Unwrap(err); u != nil {
				err = u
			}
			return exitWith(ExitInvalidInput, err)
		}
		if len(args) < 1 {
			fmt.Fprintf(a.stderr, "Invalid command: %s (watch and progress supported)\n", s)
			continue
		}
		switch args[0] {
		case "watch":
			if len(args) < 2 && envKey == "" {
				fmt.Fprintf(a.stderr, "Invalid command %s (command type or key is not provided)\n", s)
				continue
			}
			lo := *o
			watchArgs, execArgs, err := parseWatchArgs(a.osArgs(), args, envKey, envRange, &lo)
			if err != nil {
				return exitWith(ExitBadArgs, err)
			}
			wc, err := a.watchChan(cli, lo, watchArgs)
			if err != nil {
				fmt.Fprintf(a.stderr, "Invalid command %s (%v)\n", s, err)
				continue
			}
			go func() {
				if err := a.printWatch(cli, wc, execArgs); err != nil {
					select {
					case fatal <- err:
					default:
					}
				}
			}()
		case "progress":
			if err := cli.RequestProgress(clientv3.WithRequireLeader(context.Background())); err != nil {
				return exitWith(ExitError, err)
			}
		default:
			fmt.Fprintf(a.stderr, "Invalid command %s (only support watch)\n", s)
		}
	}
}

// watchChan opens the watch of args (key, optional range end).
func (a *app) watchChan(cli *clientv3.Client, o watchOptions, args []string) (clientv3.WatchChan, error) {
	if len(args) < 1 {
		return nil, errBadArgsNum
	}
	opts := []clientv3.OpOption{clientv3.WithRev(o.rev)}
	if len(args) == 2 {
		if o.prefix {
			return nil, errors.New("`range_end` and `--prefix` are mutually exclusive")
		}
		opts = append(opts, clientv3.WithRange(args[1]))
	}
	if o.prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	if o.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if o.progress {
		opts = append(opts, clientv3.WithProgressNotify())
	}
	return cli.Watch(clientv3.WithRequireLeader(context.Background()), args[0], opts...), nil
}

// printWatch prints every response of wc until it closes, running execArgs
// once per event. The error ends the command: a format that cannot show
// watch responses, or a failed command (exit 1, already reported).
func (a *app) printWatch(cli *clientv3.Client, wc clientv3.WatchChan, execArgs []string) error {
	for resp := range wc {
		if resp.Canceled {
			fmt.Fprintf(a.stderr, "watch was canceled (%v)\n", resp.Err())
		}
		if resp.IsProgressNotify() {
			fmt.Fprintf(a.stdout, "progress notify: %d\n", resp.Header.Revision)
		}
		if err := a.display.Watch(resp); err != nil {
			var ue *printer.UnsupportedError
			if errors.As(err, &ue) {
				return exitWith(ExitBadFeature, err)
			}
			return err
		}
		if len(execArgs) == 0 {
			continue
		}
		for _, ev := range resp.Events {
			c := exec.CommandContext(cli.Ctx(), execArgs[0], execArgs[1:]...)
			c.Env = append(append([]string(nil), a.environ...),
				fmt.Sprintf("ETCD_WATCH_REVISION=%d", resp.Header.Revision),
				fmt.Sprintf("ETCD_WATCH_EVENT_TYPE=%q", ev.Type),
				fmt.Sprintf("ETCD_WATCH_KEY=%q", ev.Kv.Key),
				fmt.Sprintf("ETCD_WATCH_VALUE=%q", ev.Kv.Value))
			c.Stdout, c.Stderr = a.stdout, a.stderr
			if a.stdout == nil {
				c.Stdout = io.Discard
			}
			if err := c.Run(); err != nil {
				fmt.Fprintf(a.stderr, "command %q error (%v)\n", execArgs, err)
				return exitSilently(ExitError)
			}
		}
	}
	return nil
}

// parseWatchArgs splits watch's arguments into the watch's key and range
// end and the command to run after `--`, as etcdctl does from its raw
// os.Args (cobra drops the `--`): osArgs is the whole command line,
// commandArgs what cobra left. In interactive mode (o != nil) commandArgs is
// the line, whose flags are parsed into o.
func parseWatchArgs(osArgs, commandArgs []string, envKey, envRange string, o *watchOptions) (watchArgs, execArgs []string, err error) {
	interactive := o != nil
	rawArgs := append([]string(nil), osArgs...)
	watchArgs = append([]string(nil), commandArgs...)
	// Drop what precedes the command ("etcdctl --endpoints=x watch").
	for i := range rawArgs {
		if rawArgs[i] == "watch" {
			rawArgs = rawArgs[i+1:]
			break
		}
	}
	reset := func() { o.prefix, o.rev, o.prevKV = false, 0, false }
	if interactive {
		if watchArgs[0] != "watch" {
			reset()
			return nil, nil, errBadArgsInteractiveWatch
		}
		watchArgs = watchArgs[1:]
	}
	sepIdx, hasSep := index(rawArgs, "--")
	if interactive {
		sepIdx, hasSep = index(watchArgs, "--")
		if hasSep && sepIdx == len(watchArgs)-1 {
			reset()
			return nil, nil, errBadArgsNumSeparator
		}
		fs := pflag.NewFlagSet("watch", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		watchFlags(fs, &watchOptions{})
		if perr := fs.Parse(watchArgs); perr != nil {
			reset()
			return nil, nil, perr
		}
		pArgs := fs.Args()
		if !hasSep && envKey == "" && len(pArgs) < 1 {
			reset()
			return nil, nil, errBadArgsNum
		}
		if !hasSep && len(pArgs) > 0 && envKey != "" {
			reset()
			return nil, nil, errBadArgsNumConflictEnv
		}
	} else {
		if hasSep && sepIdx == len(rawArgs)-1 {
			return nil, nil, errBadArgsNumSeparator
		}
		if !hasSep && len(rawArgs) < 1 && envKey == "" {
			return nil, nil, errBadArgsNum
		}
		if hasSep && envKey != "" {
			// ETCDCTL_WATCH_KEY=foo watch foo -- echo 1: the key is given
			// twice. Walk both from the end; an extra word of cobra's
			// arguments met at the separator is the conflict.
			w, r := len(watchArgs)-1, len(rawArgs)-1
			for ; w >= 0; w-- {
				if r >= 0 && watchArgs[w] == rawArgs[r] {
					r--
					continue
				}
				if r == sepIdx {
					return nil, nil, errBadArgsNumConflictEnv
				}
			}
		}
		if !hasSep && len(watchArgs) > 0 && envKey != "" {
			return nil, nil, errBadArgsNumConflictEnv
		}
	}
	withSep := rawArgs
	if interactive {
		withSep = watchArgs
	}
	idx, found := index(withSep, "--")
	if found {
		execArgs = withSep[idx+1:]
	}
	if interactive {
		fs := pflag.NewFlagSet("watch", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var lo watchOptions
		watchFlags(fs, &lo)
		if perr := fs.Parse(withSep); perr != nil {
			return nil, nil, perr
		}
		watchArgs = fs.Args()
		o.prefix, o.rev, o.prevKV = lo.prefix, lo.rev, lo.prevKV
	}
	if envKey != "" {
		ranges := []string{envKey}
		if envRange != "" {
			ranges = append(ranges, envRange)
		}
		watchArgs = append(ranges, watchArgs...)
	}
	if !found {
		return watchArgs, nil, nil
	}
	// cobra's arguments run the command's words on after the key
	// ("foo bar echo hello"): cut at the last occurrence of the command.
	end := len(watchArgs) - 1
	for ; end >= 0; end-- {
		if watchArgs[end] == withSep[idx+1] {
			break
		}
	}
	return watchArgs[:max(end, 0)], execArgs, nil
}

// index returns the position of the first s in args.
func index(args []string, s string) (int, bool) {
	for i, a := range args {
		if a == s {
			return i, true
		}
	}
	return 0, false
}

// discardValue is a flag value that ignores what it is set to.
type discardValue struct{}

func (discardValue) String() string   { return "" }
func (discardValue) Set(string) error { return nil }
func (discardValue) Type() string     { return "" }
