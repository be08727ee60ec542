package ctlv2

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/urfave/cli"
	client "go.etcd.io/etcd/client/v2"
)

var (
	errKeyRequired   = errors.New("key required")
	errValueRequired = errors.New("value required")
)

func ttlFlag() cli.Flag {
	return cli.IntFlag{Name: "ttl", Value: 0, Usage: "key time-to-live in seconds"}
}

func ttlOf(c *cli.Context) time.Duration { return time.Duration(c.Int("ttl")) * time.Second }

// keyArg returns the first argument, or ends the command with "key
// required".
func (r *runner) keyArg(c *cli.Context) (string, error) {
	if len(c.Args()) == 0 {
		return "", r.fail(ExitBadArgs, errKeyRequired)
	}
	return c.Args()[0], nil
}

// valueArg returns the second argument, else all of stdin, which must not
// be empty.
func (r *runner) valueArg(c *cli.Context) (string, error) {
	if len(c.Args()) > 1 {
		return c.Args()[1], nil
	}
	var b []byte
	var err error
	if r.env.Stdin != nil {
		b, err = io.ReadAll(r.env.Stdin)
	}
	if err != nil || len(b) == 0 {
		return "", r.fail(ExitBadArgs, errValueRequired)
	}
	return string(b), nil
}

// keyCall runs one keys request bounded by --total-timeout; a failure is
// printed and exits 4.
func (r *runner) keyCall(c *cli.Context, call func(ctx context.Context, ki client.KeysAPI) (*client.Response, error)) (*client.Response, error) {
	ki, err := r.keysAPI(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := r.totalTimeout(c)
	defer cancel()
	resp, err := call(ctx, ki)
	if err != nil {
		return nil, r.fail(ExitServerError, err)
	}
	return resp, nil
}

func (r *runner) setCommand() cli.Command {
	return cli.Command{
		Name:      "set",
		Usage:     "set the value of a key",
		ArgsUsage: "<key> <value>",
		Description: `Set sets the value of a key.

   When <value> begins with '-', <value> is interpreted as a flag.
   Insert '--' for workaround:

   $ set -- <key> <value>`,
		Flags: []cli.Flag{
			ttlFlag(),
			cli.StringFlag{Name: "swap-with-value", Usage: "previous value"},
			cli.IntFlag{Name: "swap-with-index", Value: 0, Usage: "previous index"},
		},
		Action: func(c *cli.Context) error {
			return r.setKey(c, &client.SetOptions{TTL: ttlOf(c), PrevValue: c.String("swap-with-value"), PrevIndex: uint64(c.Int("swap-with-index"))})
		},
	}
}

func (r *runner) updateCommand() cli.Command {
	return cli.Command{
		Name:      "update",
		Usage:     "update an existing key with a given value",
		ArgsUsage: "<key> <value>",
		Flags:     []cli.Flag{ttlFlag()},
		Action: func(c *cli.Context) error {
			return r.setKey(c, &client.SetOptions{TTL: ttlOf(c), PrevExist: client.PrevExist})
		},
	}
}

func (r *runner) mkCommand() cli.Command {
	return cli.Command{
		Name:      "mk",
		Usage:     "make a new key with a given value",
		ArgsUsage: "<key> <value>",
		Flags: []cli.Flag{
			cli.BoolFlag{Name: "in-order", Usage: "create in-order key under directory <key>"},
			ttlFlag(),
		},
		Action: func(c *cli.Context) error {
			if !c.Bool("in-order") {
				return r.setKey(c, &client.SetOptions{TTL: ttlOf(c), PrevExist: client.PrevNoExist})
			}
			return r.writeKey(c, func(ctx context.Context, ki client.KeysAPI, key, value string) (*client.Response, error) {
				return ki.CreateInOrder(ctx, key, value, &client.CreateInOrderOptions{TTL: ttlOf(c)})
			})
		},
	}
}

// setKey is set, update and mk: a key, a value and one PUT with opts.
func (r *runner) setKey(c *cli.Context, opts *client.SetOptions) error {
	return r.writeKey(c, func(ctx context.Context, ki client.KeysAPI, key, value string) (*client.Response, error) {
		return ki.Set(ctx, key, value, opts)
	})
}

// writeKey reads a key and a value (keyArg, valueArg), runs one write
// request with them (keyCall) and prints the response.
func (r *runner) writeKey(c *cli.Context, write func(ctx context.Context, ki client.KeysAPI, key, value string) (*client.Response, error)) error {
	key, err := r.keyArg(c)
	if err != nil {
		return err
	}
	value, err := r.valueArg(c)
	if err != nil {
		return err
	}
	resp, err := r.keyCall(c, func(ctx context.Context, ki client.KeysAPI) (*client.Response, error) {
		return write(ctx, ki, key, value)
	})
	if err != nil {
		return err
	}
	r.printResponse(c, resp)
	return nil
}

func (r *runner) mkdirCommand() cli.Command {
	return r.dirCommand("mkdir", "make a new directory", "<key>", client.PrevNoExist)
}

func (r *runner) setdirCommand() cli.Command {
	return r.dirCommand("setdir", "create a new directory or update an existing directory TTL", "<key>", client.PrevIgnore)
}

func (r *runner) updatedirCommand() cli.Command {
	return r.dirCommand("updatedir", "update an existing directory", "<key> <value>", client.PrevExist)
}

// dirCommand is mkdir, setdir and updatedir: a directory PUT, printed only
// in the extended and json formats.
func (r *runner) dirCommand(name, usage, argsUsage string, prev client.PrevExistType) cli.Command {
	return cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: argsUsage,
		Flags:     []cli.Flag{ttlFlag()},
		Action: func(c *cli.Context) error {
			key, err := r.keyArg(c)
			if err != nil {
				return err
			}
			resp, err := r.keyCall(c, func(ctx context.Context, ki client.KeysAPI) (*client.Response, error) {
				return ki.Set(ctx, key, "", &client.SetOptions{TTL: ttlOf(c), Dir: true, PrevExist: prev})
			})
			if err != nil {
				return err
			}
			if c.GlobalString("output") != "simple" {
				r.printResponse(c, resp)
			}
			return nil
		},
	}
}

func (r *runner) rmCommand() cli.Command {
	return cli.Command{
		Name:      "rm",
		Usage:     "remove a key or a directory",
		ArgsUsage: "<key>",
		Flags: []cli.Flag{
			cli.BoolFlag{Name: "dir", Usage: "removes the key if it is an empty directory or a key-value pair"},
			cli.BoolFlag{Name: "recursive, r", Usage: "removes the key and all child keys(if it is a directory)"},
			cli.StringFlag{Name: "with-value", Value: "", Usage: "previous value"},
			cli.IntFlag{Name: "with-index", Value: 0, Usage: "previous index"},
		},
		Action: func(c *cli.Context) error {
			return r.remove(c, &client.DeleteOptions{
				PrevIndex: uint64(c.Int("with-index")),
				PrevValue: c.String("with-value"),
				Dir:       c.Bool("dir"),
				Recursive: c.Bool("recursive"),
			})
		},
	}
}

func (r *runner) rmdirCommand() cli.Command {
	return cli.Command{
		Name:      "rmdir",
		Usage:     "removes the key if it is an empty directory or a key-value pair",
		ArgsUsage: "<key>",
		Action: func(c *cli.Context) error {
			return r.remove(c, &client.DeleteOptions{Dir: true})
		},
	}
}

// remove is rm and rmdir; a removed directory is printed only in the
// extended and json formats.
func (r *runner) remove(c *cli.Context, opts *client.DeleteOptions) error {
	key, err := r.keyArg(c)
	if err != nil {
		return err
	}
	resp, err := r.keyCall(c, func(ctx context.Context, ki client.KeysAPI) (*client.Response, error) {
		return ki.Delete(ctx, key, opts)
	})
	if err != nil {
		return err
	}
	if !resp.Node.Dir || c.GlobalString("output") != "simple" {
		r.printResponse(c, resp)
	}
	return nil
}

func (r *runner) getCommand() cli.Command {
	return cli.Command{
		Name:      "get",
		Usage:     "retrieve the value of a key",
		ArgsUsage: "<key>",
		Flags: []cli.Flag{
			cli.BoolFlag{Name: "sort", Usage: "returns result in sorted order"},
			cli.BoolFlag{Name: "quorum, q", Usage: "require quorum for get request"},
		},
		Action: func(c *cli.Context) error {
			key, err := r.keyArg(c)
			if err != nil {
				return err
			}
			resp, err := r.keyCall(c, func(ctx context.Context, ki client.KeysAPI) (*client.Response, error) {
				return ki.Get(ctx, key, &client.GetOptions{Sort: c.Bool("sort"), Quorum: c.Bool("quorum")})
			})
			if err != nil {
				return err
			}
			if resp.Node.Dir {
				return r.failf(ExitBadArgs, "%s: is a directory\n", resp.Node.Key)
			}
			r.printResponse(c, resp)
			return nil
		},
	}
}

func (r *runner) lsCommand() cli.Command {
	return cli.Command{
		Name:      "ls",
		Usage:     "retrieve a directory",
		ArgsUsage: "[key]",
		Flags: []cli.Flag{
			cli.BoolFlag{Name: "sort", Usage: "returns result in sorted order"},
			cli.BoolFlag{Name: "recursive, r", Usage: "returns all key names recursively for the given path"},
			cli.BoolFlag{Name: "p", Usage: "append slash (/) to directories"},
			cli.BoolFlag{Name: "quorum, q", Usage: "require quorum for get request"},
		},
		Action: func(c *cli.Context) error {
			key := "/"
			if len(c.Args()) != 0 {
				key = c.Args()[0]
			}
			resp, err := r.keyCall(c, func(ctx context.Context, ki client.KeysAPI) (*client.Response, error) {
				return ki.Get(ctx, key, &client.GetOptions{Sort: c.Bool("sort"), Recursive: c.Bool("recursive"), Quorum: c.Bool("quorum")})
			})
			if err != nil {
				return err
			}
			if c.GlobalString("output") != "simple" {
				r.printResponse(c, resp)
				return nil
			}
			if !resp.Node.Dir {
				r.outln(resp.Node.Key)
			}
			for _, n := range resp.Node.Nodes {
				r.printTree(n, c.Bool("p"))
			}
			return nil
		},
	}
}

// printTree prints a node's key, then its children's, depth first; with
// slash, directories end in '/'.
func (r *runner) printTree(n *client.Node, slash bool) {
	if n.Dir && slash {
		r.outln(n.Key + "/")
	} else {
		r.outln(n.Key)
	}
	for _, child := range n.Nodes {
		r.printTree(child, slash)
	}
}
