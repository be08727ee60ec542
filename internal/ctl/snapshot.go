package ctl

import (
	"github.com/spf13/cobra"
)

const snapshotExample = `# Save snapshot to a given file
etcdctl snapshot save /backup/etcd-snapshot.db

# Get snapshot from given address and save it to file
etcdctl snapshot save --endpoints=127.0.0.1:3000 /backup/etcd-snapshot.db

# Get snapshot from given address with certificates
etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/etcd/ca.crt --cert=/etc/etcd/etcd.crt --key=/etc/etcd/etcd.key snapshot save /backup/etcd-snapshot.db

# Get snapshot wih certain user and password
etcdctl --user=root --password=password123 snapshot save /backup/etcd-snapshot.db

# Get snapshot from given address with timeout
etcdctl --endpoints=https://127.0.0.1:2379 --dial-timeout=20s snapshot save /backup/etcd-snapshot.db

# Save snapshot with desirable time format
etcdctl snapshot save /mnt/backup/etcd/backup_$(date +%Y%m%d_%H%M%S).db`

// newSnapshotCommand is etcdctl's `snapshot save` plus etcdutl's
// `snapshot status` and `snapshot restore` (etcdctl 3.6 has neither: it
// prints the group help).
func (a *app) newSnapshotCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "snapshot <subcommand>",
		Short:   "Manages etcd node snapshots",
		Example: snapshotExample,
	}
	save := &cobra.Command{
		Use:   "save <filename>",
		Short: "Stores an etcd node backend snapshot to a given file",
		RunE:  a.run(a.snapshotSave),
	}
	status := &cobra.Command{
		Use:   "status <filename>",
		Short: "Gets backend snapshot status of a given file",
		Long: `When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are hash, revision, total keys, total size.
`,
		RunE: a.run(a.snapshotStatus),
	}
	cmd.AddCommand(save, status, a.newSnapshotRestoreCommand())
	return cmd
}
