package ctl

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/ctl/printer"
	"github.com/cairnkv/cairn/internal/mvcc"
)

// newHashKVCommand is etcdutl's `hashkv <file> [--rev N]`.
func (a *app) newHashKVCommand() *cobra.Command {
	var rev int64
	cmd := &cobra.Command{
		Use:   "hashkv <filename>",
		Short: "Prints the KV history hash of a given file",
	}
	cmd.Flags().Int64Var(&rev, "rev", 0, "maximum revision to hash (default: latest revision)")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) error { return a.hashKV(args, rev) })
	return cmd
}

// hashKV opens the file as a member's backend (read-write, like etcdutl:
// a saved snapshot's trailing SHA-256 no longer matches afterwards) and
// prints etcd's HashKV of its key space up to rev.
func (a *app) hashKV(args []string, rev int64) error {
	if len(args) != 1 {
		return exitf(ExitError, "accepts 1 arg(s), received %d", len(args))
	}
	if err := a.initDisplay(); err != nil {
		return err
	}
	h, err := fileHashKV(args[0], rev)
	if err != nil {
		return exitWith(ExitError, err)
	}
	return a.display.DBHashKV(h)
}

func fileHashKV(path string, rev int64) (printer.DBHashKV, error) {
	if _, err := os.Stat(path); err != nil {
		return printer.DBHashKV{}, err
	}
	b, err := backend.Open(backend.DefaultConfig(path))
	if err != nil {
		// etcdutl's backend panics here (exit 2) with this message.
		panic("failed to open database")
	}
	defer b.Close()
	st, err := mvcc.New(b, mvcc.DefaultConfig())
	if err != nil {
		return printer.DBHashKV{}, err
	}
	defer st.Close()
	h, _, err := st.HashByRev(rev)
	switch {
	case errors.Is(err, mvcc.ErrFutureRev):
		return printer.DBHashKV{}, mvcc.ErrFutureRev
	case errors.Is(err, mvcc.ErrCompacted):
		return printer.DBHashKV{}, mvcc.ErrCompacted
	case err != nil:
		return printer.DBHashKV{}, err
	}
	return printer.DBHashKV{Hash: h.Hash, HashRevision: h.Revision, CompactRevision: h.CompactRevision}, nil
}
