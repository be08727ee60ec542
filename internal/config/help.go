package config

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// usageLine is the short usage printed to stderr on -h and on flag errors.
const usageLine = `Usage:

  etcd [flags]
    Start an etcd server.

  etcd --version
    Show the version of etcd.

  etcd -h | --help
    Show the help information about etcd.

  etcd --config-file
    Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.

  etcd gateway
    Run the stateless pass-through etcd TCP connection forwarding proxy.

  etcd grpc-proxy
    Run the stateless etcd v3 gRPC L7 reverse proxy.
`

// HelpText is the grouped flag listing --help prints to stdout, built from
// the flag table.
func HelpText() string {
	var b strings.Builder
	defaults := Default()
	group := ""
	for _, s := range flagTable {
		if s.group == groupHidden {
			continue
		}
		if s.group != group {
			group = s.group
			b.WriteString("\n" + group + ":\n")
		}
		b.WriteString("  --" + s.name)
		switch s.show {
		case "":
			b.WriteString(" '" + flagValueString(s, defaults) + "'")
		case "-":
		default:
			b.WriteString(" " + s.show)
		}
		b.WriteString("\n")
		for _, line := range strings.Split(s.help, "\n") {
			b.WriteString("    " + line + "\n")
		}
	}
	b.WriteString("\nCAUTIOUS with unsafe flag! It may break the guarantees given by the consensus protocol!\n")
	return b.String()
}

// flagValueString renders the value of spec's field in c the way the flag
// package would.
func flagValueString(spec flagSpec, c *Config) string {
	switch p := spec.field(c).(type) {
	case *string:
		if spec.kind == kindPlain {
			return *p
		}
	case *bool:
		return fmt.Sprint(*p)
	case *uint, *uint64, *int, *int64:
		return fmt.Sprint(deref(p))
	case interface{ String() string }:
		return p.String()
	}
	return flagValue(spec, c).String()
}

func deref(p any) any {
	switch p := p.(type) {
	case *uint:
		return *p
	case *uint64:
		return *p
	case *int:
		return *p
	case *int64:
		return *p
	}
	return p
}

// VersionText is what --version prints.
func VersionText() string {
	sha := "not provided"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				sha = s.Value
			}
		}
	}
	return fmt.Sprintf("etcd Version: %s\nGit SHA: %s\nGo Version: %s\nGo OS/Arch: %s/%s\ncairn Version: %s\n",
		EtcdVersion, sha, runtime.Version(), runtime.GOOS, runtime.GOARCH, CairnVersion)
}
