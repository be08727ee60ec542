package ctl

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// usage writes a command's help in etcdctl's layout (E:pkg/cobrautl/help.go)
// to stdout: NAME, USAGE, VERSION (root), API VERSION and COMMANDS (groups),
// DESCRIPTION, OPTIONS, GLOBAL OPTIONS, columns aligned by a tab writer.
func (a *app) usage(cmd *cobra.Command) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 8, 1, '\t', 0)
	fmt.Fprintf(tw, "NAME:\n  %s - %s\n\n", pathBelow(cmd, cmd.Root()), cmd.Short)
	fmt.Fprintf(tw, "USAGE:\n  %s\n\n", cmd.UseLine())
	if !cmd.HasParent() {
		fmt.Fprintf(tw, "VERSION:\n  %s\n\n", Version)
	}
	if cmd.HasSubCommands() {
		fmt.Fprintf(tw, "API VERSION:\n  %s\n\n", APIVersion)
	}
	if cmd.Example != "" {
		fmt.Fprint(tw, "Examples:\n")
		for _, line := range strings.Split(cmd.Example, "\n") {
			fmt.Fprintf(tw, "  %s\n", line)
		}
		fmt.Fprintln(tw)
	}
	if cmd.HasSubCommands() {
		fmt.Fprint(tw, "COMMANDS:\n")
		for _, sub := range descendants(cmd) {
			if sub.Runnable() {
				fmt.Fprintf(tw, "  %s\t%s\n", pathBelow(sub, cmd), sub.Short)
			}
		}
		fmt.Fprintln(tw)
	}
	if cmd.Long != "" {
		fmt.Fprint(tw, "DESCRIPTION:\n")
		for _, line := range strings.Split(strings.Trim(cmd.Long, "\n\t "), "\n") {
			fmt.Fprintf(tw, "  %s\n", line)
		}
		fmt.Fprintln(tw)
	}
	if cmd.HasLocalFlags() {
		fmt.Fprintf(tw, "OPTIONS:\n%s\n", flagUsages(cmd.LocalFlags()))
	}
	if cmd.HasInheritedFlags() {
		fmt.Fprintf(tw, "GLOBAL OPTIONS:\n%s\n", flagUsages(cmd.InheritedFlags()))
	}
	return tw.Flush()
}

// pathBelow names cmd by its path under top, e.g. "endpoint health".
func pathBelow(cmd, top *cobra.Command) string {
	parts := []string{cmd.Name()}
	for cmd.HasParent() && cmd.Parent().Name() != top.Name() {
		cmd = cmd.Parent()
		parts = append([]string{cmd.Name()}, parts...)
	}
	return strings.Join(parts, " ")
}

// descendants lists cmd's subcommands depth first, each before its own.
func descendants(cmd *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, sub := range cmd.Commands() {
		out = append(out, sub)
		out = append(out, descendants(sub)...)
	}
	return out
}

// flagUsages lists flags one a line: `  -w, --write-out="simple"<TAB>usage`;
// booleans and other flags with an implicit value show it in brackets.
func flagUsages(fs *pflag.FlagSet) string {
	var b strings.Builder
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Deprecated != "" {
			return
		}
		if f.Shorthand != "" {
			fmt.Fprintf(&b, "  -%s, --%s", f.Shorthand, f.Name)
		} else {
			fmt.Fprintf(&b, "      --%s", f.Name)
		}
		def := f.DefValue
		if f.Value.Type() == "string" {
			def = fmt.Sprintf("%q", def)
		}
		if f.NoOptDefVal != "" {
			fmt.Fprintf(&b, "[=%s]", def)
		} else {
			fmt.Fprintf(&b, "=%s", def)
		}
		fmt.Fprintf(&b, "\t%s\n", f.Usage)
	})
	return b.String()
}
