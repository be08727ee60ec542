// Command cairnbench benchmarks cairn side by side with reference etcd
// releases on this machine. From the repository root:
//
//	go -C bench run ./cmd/cairnbench                 # quick mode, a few minutes
//	go -C bench run ./cmd/cairnbench --mode full     # the numbers for docs/performance.md
//
// It builds ./cmd/cairn, ensures the reference binaries (scripts/build-refs.sh),
// runs each workload against every system in turn for several rounds, and
// writes results.md and results.json into bench/results/<timestamp>/. Every
// process it starts is stopped before it exits, also on Ctrl-C and on error.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cairnkv/cairn/bench/harness"
)

func main() {
	os.Exit(run())
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run() int {
	defSUT := os.Getenv("CAIRNBENCH_SUT")
	if defSUT == "" {
		defSUT = "cairn"
	}
	var (
		mode      = flag.String("mode", "quick", "quick (minutes), full (the published numbers) or tiny (plumbing check only)")
		sut       = flag.String("sut", defSUT, `system under test: "cairn" (go build ./cmd/cairn), "etcd-<version>" (a reference build), or a server binary path; env CAIRNBENCH_SUT`)
		refs      = flag.String("refs", "3.6.16,3.7.3", "reference etcd versions, comma-separated (built by scripts/build-refs.sh)")
		wl        = flag.String("workloads", "", "comma-separated workload names or prefixes (default: all; see --list)")
		rounds    = flag.Int("rounds", 0, "rounds per workload (default: the mode's)")
		out       = flag.String("out", "", "results parent directory (default: <repo>/bench/results)")
		workdir   = flag.String("workdir", "", "where servers' data dirs live: the disk being measured (default: $TMPDIR or /tmp)")
		repo      = flag.String("repo", "", "cairn repository root (default: found from the working directory)")
		profile   = flag.String("profile", "", "workloads (names or prefixes) for which to capture CPU and heap pprof profiles of the system under test, in an extra run outside the statistics; needs --enable-pprof support in the server")
		profSecs  = flag.Int("profile-seconds", 10, "length of the CPU profile window")
		profRefs  = flag.Bool("profile-refs", false, "also profile the reference servers")
		v2Ref     = flag.String("v2-ref", "", "server binary of the v2 reference for the v2-* workloads (default: Debian's etcd-server, etcd 3.4, at /usr/bin/etcd, installed with apt-get when missing)")
		list      = flag.Bool("list", false, "list the workloads and exit")
		quietFlag = flag.Bool("q", false, "no progress log")
	)
	flag.Parse()

	sizes, ok := harness.Modes[*mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown --mode %q (quick, full, tiny)\n", *mode)
		return 2
	}
	if *rounds > 0 {
		sizes.Rounds = *rounds
	}
	if *list {
		for _, w := range harness.WorkloadList(sizes) {
			fmt.Printf("%-22s %s\n", w[0], w[1])
		}
		return 0
	}
	root := *repo
	if root == "" {
		wd, _ := os.Getwd()
		r, err := harness.FindRepoRoot(wd)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		root = r
	}
	outDir := *out
	if outDir == "" {
		outDir = filepath.Join(root, "bench", "results")
	}
	cfg := harness.Config{
		RepoRoot: root, SUT: *sut, Refs: splitList(*refs), Mode: *mode, Sizes: sizes,
		Workloads: splitList(*wl), OutDir: outDir, WorkRoot: *workdir,
		Command: "go -C bench run ./cmd/cairnbench " + strings.Join(os.Args[1:], " "),
		Profile: splitList(*profile), ProfileSeconds: *profSecs, ProfileRefs: *profRefs, V2Ref: *v2Ref,
		Log: os.Stderr,
	}
	if *quietFlag {
		cfg.Log = nil
	}
	// The first Ctrl-C cancels the run, which then stops its servers; the
	// handler stays installed until then so a second one cannot orphan them.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	res, err := harness.Run(ctx, cfg)
	stop()
	if res != nil && res.Dir != "" {
		fmt.Fprintf(os.Stderr, "results: %s/results.md and results.json\n", res.Dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cairnbench:", err)
		return 1
	}
	md, _ := os.ReadFile(filepath.Join(res.Dir, "results.md"))
	os.Stdout.Write(md)
	if res.AnyFailed() {
		return 3 // results written, but some workload failed ("not supported" is not a failure)
	}
	return 0
}
