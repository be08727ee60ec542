package ctl

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/internal/backend"
)

// newDefragCommand is etcdctl's online `defrag [--cluster]` and, with
// --data-dir, etcdutl's offline defrag of a member's data dir.
func (a *app) newDefragCommand() *cobra.Command {
	var cluster bool
	var dataDir string
	cmd := &cobra.Command{
		Use:   "defrag",
		Short: "Defragments the storage of the etcd members with given endpoints",
	}
	cmd.PersistentFlags().BoolVar(&cluster, "cluster", false, "use all endpoints from the cluster member list")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "Defragments a data directory not in use by etcd (what etcdutl defrag does).")
	cmd.RunE = a.run(func(cmd *cobra.Command, _ []string) error {
		if cmd.Flags().Changed("data-dir") {
			return a.defragDataDir(dataDir)
		}
		return a.defrag(cmd, cluster)
	})
	return cmd
}

// defrag defragments each endpoint in turn, one client per endpoint, and
// reports each result on its own line; any failure exits 1 without an
// "Error:" line. --write-out is ignored.
func (a *app) defrag(cmd *cobra.Command, cluster bool) error {
	spec, err := a.clientSpec(cmd)
	if err != nil {
		return err
	}
	eps, err := a.clusterEndpoints(&endpointOptions{cluster: cluster})
	if err != nil {
		return err
	}
	failures := 0
	for _, ep := range eps {
		one := *spec
		one.Endpoints = []string{ep}
		cli, err := a.newClient(&one)
		if err != nil {
			return err
		}
		ctx, cancel := a.commandCtx()
		start := time.Now()
		_, err = cli.Defragment(ctx, ep)
		took := time.Since(start)
		cancel()
		if err != nil {
			fmt.Fprintf(a.stderr, "Failed to defragment etcd member[%s]. took %s. (%v)\n", ep, took, err)
			failures++
		} else {
			fmt.Fprintf(a.stdout, "Finished defragmenting etcd member[%s]. took %s\n", ep, took)
		}
		cli.Close()
	}
	if failures > 0 {
		return exitSilently(ExitError)
	}
	return nil
}

// defragDataDir is etcdutl's `defrag --data-dir`: it rewrites
// <dir>/member/snap/db without free pages. It prints nothing on success
// (logs go to stderr); while another process holds the db it says so after
// a second and keeps waiting (at most the backend's 10 s lock timeout).
func (a *app) defragDataDir(dir string) error {
	fail := func(err error) error {
		return exitf(ExitError, "Failed to defragment etcd data[%s] (%v)", dir, err)
	}
	db := filepath.Join(dir, "member", "snap", "db")
	if _, err := os.Stat(db); err != nil {
		return fail(err)
	}
	cfg := backend.DefaultConfig(db)
	cfg.Logger = consoleLogger(a.stderr)
	type opened struct {
		b   *backend.Backend
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		b, err := backend.Open(cfg)
		ch <- opened{b, err}
	}()
	var o opened
	select {
	case o = <-ch:
	case <-time.After(time.Second):
		fmt.Fprintf(a.stderr, "waiting for etcd to close and release its lock on %q. "+
			"To defrag a running etcd instance, use `etcdctl defrag` instead.\n", db)
		o = <-ch
	}
	if o.err != nil {
		return fail(o.err)
	}
	err := o.b.Defrag()
	if cerr := o.b.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	return nil
}
