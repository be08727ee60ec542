// Command cairn runs one member of a cairn cluster. It accepts etcd's
// flags, ETCD_* environment variables and YAML config file.
package main

import (
	"os"

	"github.com/cairnkv/cairn/internal/launch"
)

func main() {
	os.Exit(launch.Main(os.Args, os.Environ(), os.Stdout, os.Stderr))
}
