package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// System is one server implementation under comparison.
type System struct {
	Name    string `json:"name"`                   // "cairn", "etcd-3.6.16", ...
	Binary  string `json:"binary"`                 // path of the server binary
	Version string `json:"version"`                // first line of `<binary> --version`, if it answers
	V2      bool   `json:"v2_reference,omitempty"` // the v2 reference: runs only the v2-* workloads
}

// ToolsVersion is the etcd root-module version whose tools/benchmark is used;
// the module proxy serves that module only up to v3.6.8. It drives any server.
const ToolsVersion = "3.6.8"

// RootModule is the module path of the cairn product.
const RootModule = "github.com/cairnkv/cairn"

// FindRepoRoot walks up from dir to the directory whose go.mod declares
// RootModule (bench/ has its own go.mod, which is skipped).
func FindRepoRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && modulePath(b) == RootModule {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod declaring module %s above %s", RootModule, dir)
		}
		d = parent
	}
}

func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// RefsDir is the cache of reference builds made by scripts/build-refs.sh.
func RefsDir() string {
	if d := os.Getenv("CAIRN_REFS"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "cairn-refs")
	}
	return filepath.Join(home, ".cache", "cairn-refs")
}

// RefBinary is the etcd server binary of version v in the reference cache.
func RefBinary(v string) string { return filepath.Join(RefsDir(), "etcd-v"+v, "etcd") }

// BenchmarkTool is etcd's benchmark tool in the reference cache.
func BenchmarkTool() string {
	return filepath.Join(RefsDir(), "etcd-tools-v"+ToolsVersion, "benchmark")
}

// ensureRefs runs scripts/build-refs.sh for the given versions (it builds only
// what is missing from the cache, and always the tools), holding the same
// lock file as tests/refs so concurrent users build once.
func (r *runner) ensureRefs(ctx context.Context, versions []string) error {
	need := false
	for _, v := range versions {
		for _, b := range []string{"etcd", "etcdctl", "etcdutl"} {
			if !isExecutable(filepath.Join(RefsDir(), "etcd-v"+v, b)) {
				need = true
			}
		}
	}
	if !isExecutable(BenchmarkTool()) {
		need = true
	}
	if !need {
		return nil
	}
	if err := os.MkdirAll(RefsDir(), 0o755); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, filepath.Join(RefsDir(), ".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	r.logf("building reference binaries %v (scripts/build-refs.sh; minutes on a fresh machine)", versions)
	var out bytes.Buffer
	env := append(os.Environ(), "CAIRN_REFS="+RefsDir())
	args := append([]string{filepath.Join(r.cfg.RepoRoot, "scripts", "build-refs.sh")}, versions...)
	if err := r.procs.run(ctx, 60*time.Minute, "build-refs", r.cfg.RepoRoot, env, &out, &out, "bash", args...); err != nil {
		return fmt.Errorf("%w\n%s", err, tail(out.String(), 3000))
	}
	return nil
}

// lockFile takes an exclusive flock on path (created if missing), giving up
// when ctx ends; call unlock to release it.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := flockCtx(ctx, f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// flockCtx takes an exclusive flock, giving up when ctx ends.
func flockCtx(ctx context.Context, f *os.File) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// buildCairn builds ./cmd/cairn of the repo into dir.
func (r *runner) buildCairn(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "cairn")
	var out bytes.Buffer
	r.logf("building cairn: go build -o %s ./cmd/cairn", bin)
	err := r.procs.run(ctx, 15*time.Minute, "go build cairn", r.cfg.RepoRoot, os.Environ(), &out, &out,
		"go", "build", "-o", bin, "./cmd/cairn")
	if err != nil {
		return "", fmt.Errorf("cairn does not build (use --sut etcd-%s to check the harness against etcd): %w\n%s",
			"3.6.16", err, tail(out.String(), 3000))
	}
	return bin, nil
}

// resolveSUT turns the --sut value into a System: "cairn" builds the repo's
// cmd/cairn; "etcd-<ver>" is a reference build; anything else is a path.
func (r *runner) resolveSUT(ctx context.Context, spec, buildDir string) (System, error) {
	switch {
	case spec == "" || spec == "cairn":
		bin, err := r.buildCairn(ctx, buildDir)
		if err != nil {
			return System{}, err
		}
		return System{Name: "cairn", Binary: bin}, nil
	case strings.HasPrefix(spec, "etcd-") && !strings.Contains(spec, "/"):
		v := strings.TrimPrefix(spec, "etcd-")
		if err := r.ensureRefs(ctx, []string{v}); err != nil {
			return System{}, err
		}
		return System{Name: "sut-" + spec, Binary: RefBinary(v)}, nil
	default:
		abs, err := filepath.Abs(spec)
		if err != nil {
			return System{}, err
		}
		if !isExecutable(abs) {
			return System{}, fmt.Errorf("--sut %s: not an executable file", spec)
		}
		return System{Name: "sut-" + filepath.Base(abs), Binary: abs}, nil
	}
}

// version asks a server binary for its version; servers that do not know
// --version are reported as "unknown".
func (r *runner) version(ctx context.Context, bin string) string {
	var out bytes.Buffer
	// Run in the scratch dir: a server that ignores --version would start
	// with a default data dir in its working directory.
	if err := r.procs.run(ctx, 10*time.Second, "version", r.work, os.Environ(), &out, &out, bin, "--version"); err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(out.String()), "\n")
	return strings.TrimSpace(line)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
