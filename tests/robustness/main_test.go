// Package robustness runs real clusters under client traffic, injects
// faults (process kills and pauses, peer partitions, isolation and delay
// through proxies) and checks what the clients saw: linearizability with
// porcupine, acknowledged writes against the store's own history, revision
// order, convergence of every member's HashKV, and the members' logs.
// docs/robustness.md says how to run it and what it does not cover yet.
package robustness

import (
	"os"
	"testing"

	"github.com/cairnkv/cairn/tests/framework"
)

func TestMain(m *testing.M) {
	code := m.Run()
	framework.RemoveBinaries()
	os.Exit(code)
}
