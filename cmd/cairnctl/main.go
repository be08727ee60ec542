// Command cairnctl is cairn's command line: etcdctl (and etcdutl) compatible.
package main

import (
	"os"

	"github.com/cairnkv/cairn/internal/ctl"
)

func main() {
	os.Exit(ctl.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
