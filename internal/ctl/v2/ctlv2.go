// Package ctlv2 is cairnctl's v2 command line: what etcd 3.4's etcdctl does
// with ETCDCTL_API=2 (set, get, update, rm, mk, mkdir, setdir, updatedir,
// rmdir, ls, watch, exec-watch, cluster-health, member, backup), on the v2
// HTTP API (/v2/keys, /v2/members, /health) through etcd's own v2 client
// (go.etcd.io/etcd/client/v2) and on urfave/cli v1, the library etcdctl's
// v2 command line is built on, so flag parsing, help and usage errors are
// that library's own. Output bytes and exit codes are etcd 3.4.23's
// (docs/operations.md; checked by internal/ctl's v2 differential test).
//
// Commands never call os.Exit: they print what etcdctl prints and return
// an *exit carrying the code, which Main returns.
package ctlv2

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli"
)

// Version is the etcdctl version the v2 command line reports (etcd 3.4's,
// the last release whose etcdctl speaks v2).
const Version = "3.4.23"

// Exit codes of etcdctl 3.4's v2 commands.
const (
	ExitSuccess           = 0
	ExitBadArgs           = 1
	ExitBadConnection     = 2
	ExitBadAuth           = 3
	ExitServerError       = 4
	ExitClusterNotHealthy = 5
)

// Env is one invocation: arguments (without the program name), streams and
// environment.
type Env struct {
	Args    []string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Environ []string // the child environment of exec-watch starts from it
	Getenv  func(string) string
	// Interrupt, when not nil, ends watch, exec-watch and cluster-health
	// --forever with exit 0 once it is closed (Ctrl-C in etcdctl).
	Interrupt <-chan struct{}
}

// exit ends a command with a code; what was to be said is already printed.
type exit struct{ code int }

func (e *exit) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// cliMu serialises runs: urfave/cli keeps a few package-level settings
// (help printers, the version printer) that Main sets per run.
var cliMu sync.Mutex

// Main runs the v2 command line and returns the process exit code.
func Main(e Env) int {
	cliMu.Lock()
	defer cliMu.Unlock()
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	r := &runner{env: e, code: -1}
	app := r.newApp()
	err := app.Run(append([]string{"etcdctl"}, e.Args...))
	if r.code >= 0 {
		return r.code
	}
	var x *exit
	if errors.As(err, &x) {
		return x.code
	}
	if err != nil {
		// etcdctl prints what the cli library returned and exits 1.
		fmt.Fprintln(e.Stderr, err)
		return 1
	}
	return ExitSuccess
}

// runner holds one run's environment and outcome.
type runner struct {
	env  Env
	code int // set by the exit handler; -1 until then
}

func (r *runner) newApp() *cli.App {
	app := cli.NewApp()
	app.Name = "etcdctl"
	app.HelpName = "etcdctl" // not the binary's name: usage texts read as etcdctl's
	app.Version = Version
	app.Usage = "A simple command line client for etcd."
	app.Writer = r.env.Stdout
	app.ErrWriter = r.env.Stderr
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintf(c.App.Writer, "etcdctl version: %v\n", c.App.Version)
		fmt.Fprintln(c.App.Writer, "API version: 2")
	}
	// The library's own exit path prints an ExitCoder's message and calls
	// os.Exit; this one records the code instead.
	app.ExitErrHandler = func(_ *cli.Context, err error) {
		var x *exit
		switch {
		case err == nil:
		case errors.As(err, &x):
			r.code = x.code
		default:
			if ec, ok := err.(cli.ExitCoder); ok {
				if err.Error() != "" {
					fmt.Fprintln(r.env.Stderr, err)
				}
				r.code = ec.ExitCode()
			}
		}
	}
	app.Flags = []cli.Flag{
		cli.BoolFlag{Name: "debug", Usage: "output cURL commands which can be used to reproduce the request"},
		cli.BoolFlag{Name: "no-sync", Usage: "don't synchronize cluster information before sending request"},
		cli.StringFlag{Name: "output, o", Value: "simple", Usage: "output response in the given format (`simple`, `extended` or `json`)"},
		cli.StringFlag{Name: "discovery-srv, D", Usage: "domain name to query for SRV records describing cluster endpoints"},
		cli.BoolFlag{Name: "insecure-discovery", Usage: "accept insecure SRV records describing cluster endpoints"},
		cli.StringFlag{Name: "peers, C", Value: "", Usage: "DEPRECATED - \"--endpoints\" should be used instead"},
		cli.StringFlag{Name: "endpoint", Value: "", Usage: "DEPRECATED - \"--endpoints\" should be used instead"},
		cli.StringFlag{Name: "endpoints", Value: "", Usage: "a comma-delimited list of machine addresses in the cluster (default: \"http://127.0.0.1:2379,http://127.0.0.1:4001\")"},
		cli.StringFlag{Name: "cert-file", Value: "", Usage: "identify HTTPS client using this SSL certificate file"},
		cli.StringFlag{Name: "key-file", Value: "", Usage: "identify HTTPS client using this SSL key file"},
		cli.StringFlag{Name: "ca-file", Value: "", Usage: "verify certificates of HTTPS-enabled servers using this CA bundle"},
		cli.StringFlag{Name: "username, u", Value: "", Usage: "provide username[:password] and prompt if password is not supplied."},
		cli.DurationFlag{Name: "timeout", Value: 2 * time.Second, Usage: "connection timeout per request"},
		cli.DurationFlag{Name: "total-timeout", Value: 5 * time.Second, Usage: "timeout for the command execution (except watch)"},
	}
	app.Commands = []cli.Command{
		r.backupCommand(),
		r.clusterHealthCommand(),
		r.mkCommand(),
		r.mkdirCommand(),
		r.rmCommand(),
		r.rmdirCommand(),
		r.getCommand(),
		r.lsCommand(),
		r.setCommand(),
		r.setdirCommand(),
		r.updateCommand(),
		r.updatedirCommand(),
		r.watchCommand(),
		r.execWatchCommand(),
		r.memberCommand(),
		r.authCommand("user", "user add, grant and revoke subcommands"),
		r.authCommand("role", "role add, grant and revoke subcommands"),
		r.authCommand("auth", "overall auth controls"),
	}
	return app
}

// action adapts a command body to the library.
func (r *runner) action(fn func(c *cli.Context) error) func(c *cli.Context) error {
	return fn
}

// fail prints err as etcdctl's handleError does ("Error:  <err>", and a
// cluster error's detail lines) and ends the command with code.
func (r *runner) fail(code int, err error) error {
	fmt.Fprintln(r.env.Stderr, "Error: ", err)
	if d, ok := err.(interface{ Detail() string }); ok {
		fmt.Fprintln(r.env.Stderr, d.Detail())
	}
	return &exit{code}
}

// failf prints a plain line to stderr and ends the command with code.
func (r *runner) failf(code int, format string, a ...any) error {
	fmt.Fprintf(r.env.Stderr, format, a...)
	return &exit{code}
}

func (r *runner) outln(a ...any)               { fmt.Fprintln(r.env.Stdout, a...) }
func (r *runner) outf(format string, a ...any) { fmt.Fprintf(r.env.Stdout, format, a...) }

// environ returns the environment passed on to child processes.
func (r *runner) environ() []string {
	if r.env.Environ != nil {
		return r.env.Environ
	}
	return os.Environ()
}

// authCommand stands for etcdctl's v2 user, role and auth commands, which
// cairn refuses: it has no v2 auth.
func (r *runner) authCommand(name, usage string) cli.Command {
	return cli.Command{
		Name:            name,
		Usage:           usage,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			return r.failf(ExitBadArgs, "cairnctl: the v2 %q commands are not supported: cairn has no v2 authentication (%s %s)\n",
				name, name, strings.Join(c.Args(), " "))
		},
	}
}
