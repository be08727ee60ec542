// Package refs locates the reference etcd binaries that compatibility tests
// run against, building them from their published Go modules on first use.
//
// The binaries are built by scripts/build-refs.sh into a cache directory
// ($CAIRN_REFS, default ~/.cache/cairn-refs) that survives between runs, so
// only a fresh machine pays for the build. Concurrent test binaries serialise
// on a lock file so the build runs once.
package refs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
)

// Default is the etcd version Kubernetes ships and cairn is compared against.
const Default = "3.6.16"

// ToolsVersion is the newest root-module version the module proxy serves; its
// benchmark and etcd-dump-logs tools work against any server version.
const ToolsVersion = "3.6.8"

// Etcd holds the paths of one etcd release's binaries.
type Etcd struct {
	Version string
	Etcd    string // server
	Etcdctl string
	Etcdutl string
}

// Tools holds the paths of etcd's standalone tools.
type Tools struct {
	Benchmark    string
	EtcdDumpLogs string
}

var (
	mu    sync.Mutex
	built = map[string]error{}
)

// Dir is the cache directory holding every reference build.
func Dir() string {
	if d := os.Getenv("CAIRN_REFS"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "cairn-refs")
	}
	return filepath.Join(home, ".cache", "cairn-refs")
}

// EtcdRelease returns the binaries of etcd version v, building them if needed.
// It fails the test if they cannot be built.
func EtcdRelease(t testing.TB, v string) Etcd {
	t.Helper()
	if err := ensure(v); err != nil {
		t.Fatalf("reference etcd %s: %v", v, err)
	}
	d := filepath.Join(Dir(), "etcd-v"+v)
	return Etcd{
		Version: v,
		Etcd:    filepath.Join(d, "etcd"),
		Etcdctl: filepath.Join(d, "etcdctl"),
		Etcdutl: filepath.Join(d, "etcdutl"),
	}
}

// EtcdTools returns the benchmark and etcd-dump-logs binaries, building them
// if needed.
func EtcdTools(t testing.TB) Tools {
	t.Helper()
	// The script always builds the tools alongside any requested release.
	if err := ensure(Default); err != nil {
		t.Fatalf("reference etcd tools: %v", err)
	}
	d := filepath.Join(Dir(), "etcd-tools-v"+ToolsVersion)
	return Tools{Benchmark: filepath.Join(d, "benchmark"), EtcdDumpLogs: filepath.Join(d, "etcd-dump-logs")}
}

func ensure(v string) error {
	mu.Lock()
	defer mu.Unlock()
	if err, ok := built[v]; ok {
		return err
	}
	err := build(v)
	built[v] = err
	return err
}

func build(v string) error {
	if err := os.MkdirAll(Dir(), 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(Dir(), ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock reference cache: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	cmd := exec.Command("bash", script(), v)
	cmd.Env = append(os.Environ(), "CAIRN_REFS="+Dir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/build-refs.sh %s: %w\n%s", v, err, out)
	}
	return nil
}

// script finds scripts/build-refs.sh relative to this source file, so tests
// in any package can use it.
func script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "build-refs.sh")
}
