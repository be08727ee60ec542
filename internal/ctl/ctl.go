// Package ctl is cairnctl: etcdctl's command line (and, later, etcdutl's
// offline commands) on top of the official v3 client. Flags, environment,
// output bytes and exit codes follow etcdctl 3.6.16 exactly; see
// docs/spec etcd-surface.md section F.
//
// Each command lives in its own file with a matching _test.go. Commands
// return errors instead of exiting: an *exitError carries the exit code, and
// Main prints "Error: <err>" and returns the code. Output goes through a
// printer.Printer chosen by --write-out.
package ctl

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/internal/ctl/printer"
)

// The versions etcdctl 3.6.16 reports; scripts parse `version` output.
const (
	Version    = "3.6.16"
	APIVersion = "3.6"
)

const cliName = "etcdctl"

// app holds one invocation's streams, environment and global flags.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// args is the command line without the program name (watch reads the
	// raw words, as etcdctl reads os.Args, to find its `--`).
	args []string

	environ []string                // ETCDCTL_* variables are read from here
	getenv  func(key string) string // lookup in environ
	display printer.Printer         // set by clientSpec from --write-out/--hex
	g       globalFlags
}

// Main runs cairnctl with args (without the program name) and returns the
// process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, environ: os.Environ(), getenv: os.Getenv}
	return a.main(args)
}

func (a *app) main(args []string) int {
	a.args = args
	if code, ok := a.runV2(args); ok {
		return code
	}
	cobra.EnablePrefixMatching = true
	root := a.newRoot()
	if err := unknownCommand(root, args); err != nil {
		a.printUnknownCommand(err)
		return ExitError
	}
	root.SetArgs(args)
	_, err := root.ExecuteC()
	if err == nil {
		return ExitSuccess
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !ee.silent {
			fmt.Fprintln(a.stderr, "Error:", ee.err)
		}
		return ee.code
	}
	// Flag and unknown-command errors: cobra has printed them already.
	return ExitError
}

// newRoot builds the command tree.
func (a *app) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:        cliName,
		Short:      "A simple command line client for etcd3.",
		SuggestFor: []string{"etcdctl"},
	}
	// cobra prints flag errors with the usage; the usage itself goes to
	// stdout, cobra's extra newline to stderr, as in etcdctl.
	root.SetOut(a.stderr)
	root.SetErr(a.stderr)
	root.SetUsageFunc(a.usage)
	root.SetHelpFunc(func(c *cobra.Command, _ []string) { _ = a.usage(c) })
	root.CompletionOptions.DisableDefaultCmd = true
	a.g.register(root)

	root.AddCommand(
		a.newGetCommand(),
		a.newPutCommand(),
		a.newDelCommand(),
		a.newTxnCommand(),
		a.newCompactionCommand(),
		a.newLeaseCommand(),
		a.newEndpointCommand(),
		a.newMemberCommand(),
		a.newMoveLeaderCommand(),
		a.newAlarmCommand(),
		a.newDefragCommand(),
		a.newSnapshotCommand(),
		a.newHashKVCommand(),
		a.newVersionCommand(),
		a.newWatchCommand(),
		a.newLockCommand(),
		a.newElectCommand(),
	)
	return root
}

// run adapts a command body to cobra: once flags have parsed, errors are
// reported by Main (with their exit code), never by cobra with a usage dump.
func (a *app) run(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := fn(cmd, args)
		var ee *exitError
		var ue *printer.UnsupportedError
		switch {
		case err == nil, errors.As(err, &ee):
			return err
		case errors.As(err, &ue):
			return exitWith(ExitBadFeature, err)
		default:
			return exitWith(ExitError, err)
		}
	}
}
