package ctl

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cairnkv/cairn/internal/ctl/printer"
)

// Log lines of a snapshot save carry the callers of etcd's client snapshot
// package, as etcdctl prints them.
const snapshotLogFile = "snapshot/v3_snapshot.go"

const (
	snapshotLogLineCreated = 83
	snapshotLogLineFetch   = 96
	snapshotLogLineFetched = 111
	snapshotLogLineSaved   = 121
)

// snapshotSave streams the member's backend into <file>.part (0600),
// checks the trailing SHA-256 is there, fsyncs, and renames it to <file>.
// Without an explicit --command-timeout it never times out. Every failure
// exits 5.
func (a *app) snapshotSave(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return exitf(ExitBadArgs, "snapshot save expects one argument <filename>")
	}
	spec, err := a.clientSpec(cmd)
	if err != nil {
		return err
	}
	cfg, err := clientv3.NewClientConfig(spec, nil)
	if err != nil {
		return exitWith(ExitBadArgs, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if cmd.Flags().Changed("command-timeout") {
		cancel()
		ctx, cancel = a.commandCtx()
	}
	defer cancel()
	path := args[0]
	version, err := a.saveSnapshot(ctx, cfg, path)
	if err != nil {
		return exitWith(ExitInterrupted, err)
	}
	fmt.Fprintf(a.stdout, "Snapshot saved at %s\n", path)
	if version != "" {
		fmt.Fprintf(a.stdout, "Server version %s\n", version)
	}
	return nil
}

// saveSnapshot does the work of snapshotSave and returns the server's
// storage version. The .part file is removed whatever happens.
func (a *app) saveSnapshot(ctx context.Context, cfg *clientv3.Config, path string) (string, error) {
	cfg.Logger = jsonLogger(a.stderr).Named("client")
	if len(cfg.Endpoints) != 1 {
		return "", fmt.Errorf("snapshot must be requested to one selected node, not multiple %v", cfg.Endpoints)
	}
	cli, err := clientv3.New(*cfg)
	if err != nil {
		return "", err
	}
	defer cli.Close()

	part := path + ".part"
	defer os.RemoveAll(part)
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("could not open %s (%w)", part, err)
	}
	defer f.Close()
	a.logAt(zapcore.InfoLevel, snapshotLogFile, snapshotLogLineCreated, "created temporary db file", zap.String("path", part))

	start := time.Now()
	resp, err := cli.SnapshotWithVersion(ctx)
	if err != nil {
		return "", err
	}
	defer resp.Snapshot.Close()
	ep := cfg.Endpoints[0]
	a.logAt(zapcore.InfoLevel, snapshotLogFile, snapshotLogLineFetch, "fetching snapshot", zap.String("endpoint", ep))
	size, err := io.Copy(f, resp.Snapshot)
	if err != nil {
		return resp.Version, fmt.Errorf("could not write snapshot: %w", err)
	}
	if size%512 != sha256.Size {
		return resp.Version, fmt.Errorf("sha256 checksum not found [bytes: %d]", size)
	}
	if err := f.Sync(); err != nil {
		return resp.Version, fmt.Errorf("could not fsync snapshot: %w", err)
	}
	if err := f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return resp.Version, fmt.Errorf("could not close file descriptor: %w", err)
	}
	a.logAt(zapcore.InfoLevel, snapshotLogFile, snapshotLogLineFetched, "fetched snapshot",
		zap.String("endpoint", ep),
		zap.String("size", printer.HumanBytes(uint64(size))),
		zap.Duration("took", time.Since(start)),
		zap.String("etcd-version", resp.Version))
	if err := os.Rename(part, path); err != nil {
		return resp.Version, fmt.Errorf("could not rename %s to %s (%w)", part, path, err)
	}
	a.logAt(zapcore.InfoLevel, snapshotLogFile, snapshotLogLineSaved, "saved", zap.String("path", path))
	return resp.Version, nil
}
