// Command cairnctl is cairn's command line: etcdctl (and etcdutl) compatible.
package main

import (
	"os"

	"github.com/cairnkv/cairn/internal/ctl"
	"github.com/cairnkv/cairn/internal/discovery"
)

func main() {
	// Tests only: CAIRN_TEST_DNS_SERVER sends name lookups (--discovery-srv)
	// to a DNS server on loopback.
	discovery.UseTestDNSServer(os.Environ())
	os.Exit(ctl.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
