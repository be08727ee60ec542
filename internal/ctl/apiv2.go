package ctl

import (
	"fmt"
	"strings"

	ctlv2 "github.com/cairnkv/cairn/internal/ctl/v2"
)

// v2OnlyCommands are etcdctl v2 commands with no v3 namesake. Without
// ETCDCTL_API they still run, with the v2 API (as etcdctl 3.3 and older ran
// them by default), and cairnctl says so on stderr. etcd 3.4's etcdctl
// defaults to v3 and refuses them as unknown commands; v2 words that are
// also v3 commands (get, watch, member, user, role, auth) stay v3.
var v2OnlyCommands = map[string]bool{
	"backup": true, "cluster-health": true, "mk": true, "mkdir": true, "rm": true, "rmdir": true,
	"ls": true, "set": true, "setdir": true, "update": true, "updatedir": true, "exec-watch": true,
}

// v2ValueFlags are the v2 global flags that take a value, so that the
// command word can be found after them ("-C <url> cluster-health").
var v2ValueFlags = map[string]bool{
	"output": true, "o": true, "discovery-srv": true, "D": true, "peers": true, "C": true,
	"endpoint": true, "endpoints": true, "cert-file": true, "key-file": true, "ca-file": true,
	"username": true, "u": true, "timeout": true, "total-timeout": true,
}

// runV2 runs the v2 command line when ETCDCTL_API=2, or when it is unset
// and the command word is a v2-only command; ok is false otherwise.
func (a *app) runV2(args []string) (code int, ok bool) {
	api := a.getenv("ETCDCTL_API")
	switch {
	case api == "2":
	case api == "" && v2OnlyCommands[v2CommandWord(args)]:
		fmt.Fprintf(a.stderr, "cairnctl: ETCDCTL_API is not set: running %q with the v2 API, the only one that has it (set ETCDCTL_API=2 to say so)\n",
			v2CommandWord(args))
	default:
		return 0, false
	}
	return ctlv2.Main(ctlv2.Env{
		Args:    args,
		Stdin:   a.stdin,
		Stdout:  a.stdout,
		Stderr:  a.stderr,
		Environ: a.environ,
		Getenv:  a.getenv,
	}), true
}

// v2CommandWord is the first word of args that is neither a flag nor a v2
// global flag's value.
func v2CommandWord(args []string) string {
	for i := 0; i < len(args); i++ {
		w := args[i]
		if w == "--" {
			return ""
		}
		if !strings.HasPrefix(w, "-") || w == "-" {
			return w
		}
		name := strings.TrimLeft(w, "-")
		if !strings.Contains(name, "=") && v2ValueFlags[name] {
			i++
		}
	}
	return ""
}
