package ctl

import (
	"fmt"

	"github.com/spf13/cobra"
)

// etcdctlCommands are etcdctl 3.6.16's top-level commands in the order it
// registers them. cobra resolves a command word (exact name or unique
// prefix) and lists "Did you mean this?" suggestions in registration order,
// so an unknown word is judged against this list, not against cairnctl's
// shorter one: a typo of a command cairnctl lacks ("leasee") gets
// etcdctl's suggestion, and a prefix that is unique only among cairnctl's
// commands ("a": alarm, auth) is refused as etcdctl refuses it.
var etcdctlCommands = []string{
	"get", "put", "del", "txn", "compaction", "alarm", "defrag", "endpoint", "move-leader", "watch",
	"version", "lease", "member", "snapshot", "make-mirror", "lock", "elect", "auth", "user", "role",
	"check", "completion", "downgrade",
}

// unknownCommand returns cobra's error for args when their command word is
// unknown to etcdctl (and to cairnctl's own extra commands, such as
// etcdutl's hashkv), with etcdctl's suggestions; nil when the word names a
// command. It asks cobra itself, on a stand-in root holding the combined
// command list and root's flags, so flag skipping, prefix matching and the
// suggestion rules are cobra's own.
func unknownCommand(root *cobra.Command, args []string) error {
	names := append([]string{}, etcdctlCommands...)
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	for _, sub := range root.Commands() {
		if !known[sub.Name()] && sub.Name() != "help" && sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	stand := &cobra.Command{Use: root.Use, SuggestFor: root.SuggestFor}
	stand.PersistentFlags().AddFlagSet(root.PersistentFlags())
	for _, n := range names {
		stand.AddCommand(&cobra.Command{Use: n, Run: func(*cobra.Command, []string) {}})
	}
	stand.InitDefaultHelpCmd()
	_, _, err := stand.Find(args)
	return err
}

// printUnknownCommand writes the error the way cobra does for an unknown
// command.
func (a *app) printUnknownCommand(err error) {
	fmt.Fprintln(a.stderr, "Error:", err.Error())
	fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cliName)
}
