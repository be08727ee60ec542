package ctl

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newVersionCommand prints the etcdctl version cairnctl is compatible with.
// It reads no environment and ignores --write-out and extra arguments.
func (a *app) newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Prints the version of etcdctl",
		RunE: a.run(func(*cobra.Command, []string) error {
			fmt.Fprintln(a.stdout, "etcdctl version:", Version)
			fmt.Fprintln(a.stdout, "API version:", APIVersion)
			return nil
		}),
	}
}
