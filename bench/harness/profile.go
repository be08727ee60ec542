package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profile runs workload w once more (outside the statistics) against a fresh
// server of sys started with --enable-pprof, capturing a CPU profile while the
// workload runs and a heap profile after it. A server that rejects the flag
// or serves no /debug/pprof/ is skipped with a note: cairn may not expose
// pprof yet.
func (r *runner) profile(ctx context.Context, w workload, sys System) error {
	srv, err := startServer(ctx, r.procs, sys, r.work, r.nextIP(),
		append([]string{"--enable-pprof"}, w.serverArgs...), time.Minute)
	if err != nil {
		return fmt.Errorf("server does not start with --enable-pprof (no pprof support?): %w", firstLine(err))
	}
	defer srv.stop()
	hc := &http.Client{Timeout: time.Duration(r.cfg.ProfileSeconds)*time.Second + 30*time.Second}
	if err := httpGet(ctx, hc, srv.url+"/debug/pprof/", io.Discard); err != nil {
		return fmt.Errorf("no pprof endpoint: %w", err)
	}
	dir := filepath.Join(r.res.Dir, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(dir, sys.Name+"-"+w.name)
	cpuErr := make(chan error, 1)
	go func() {
		cpuErr <- httpGetFile(ctx, hc, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", srv.url, r.cfg.ProfileSeconds),
			base+"-cpu.pb.gz")
	}()
	r.logf("%-13s profiling %s: CPU for %ds while the workload runs", w.name, sys.Name, r.cfg.ProfileSeconds)
	// Repeat the workload on the same server until the CPU profile window
	// closes, so that short workloads fill it; bounded in count and time.
	wctx, cancel := context.WithTimeout(ctx, r.cfg.Sizes.RunTimeout)
	defer cancel()
	var werr error
	iterations := 0
	for cpuDone := false; !cpuDone && iterations < 1000; {
		_, werr = w.run(wctx, r, srv)
		iterations++
		if werr != nil {
			break
		}
		select {
		case err := <-cpuErr:
			cpuDone = true
			cpuErr <- err
		default:
		}
	}
	if err := <-cpuErr; err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if err := httpGetFile(ctx, hc, srv.url+"/debug/pprof/heap", base+"-heap.pb.gz"); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	r.res.Profiles = append(r.res.Profiles, base+"-cpu.pb.gz", base+"-heap.pb.gz")
	r.logf("%-13s profiles of %s (%d workload iterations) in %s-{cpu,heap}.pb.gz", w.name, sys.Name, iterations, base)
	if werr != nil {
		r.note("profiled run of %s on %s failed: %v", w.name, sys.Name, firstLine(werr))
	}
	return nil
}

func httpGet(ctx context.Context, hc *http.Client, url string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

func httpGetFile(ctx context.Context, hc *http.Client, url, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = httpGet(ctx, hc, url, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

func firstLine(err error) error {
	s := err.Error()
	for i, c := range s {
		if c == '\n' {
			return errors.New(s[:i])
		}
	}
	return err
}

// profileCluster is profile for the multi-member workloads: a fresh cluster
// of sys started with --enable-pprof, the workload repeated on it while the
// leader's and one follower's CPU are profiled over the same window, then a
// heap profile of each. Files: <system>-<workload>-{leader,follower}-{cpu,heap}.pb.gz.
// A workload that kills or restarts members (leader-kill, snapshot-catchup)
// may leave one of the two profiled members gone; its profile then fails
// and is noted.
func (r *runner) profileCluster(ctx context.Context, w workload, sys System) error {
	ips := make([]string, w.members)
	for i := range ips {
		ips[i] = r.nextIP()
	}
	c, err := startCluster(ctx, r.procs, sys, r.work, ips, append([]string{"--enable-pprof"}, w.serverArgs...), time.Minute)
	if err != nil {
		return fmt.Errorf("cluster does not start with --enable-pprof (no pprof support?): %w", firstLine(err))
	}
	defer c.stop()
	lead, err := c.leader(ctx)
	if err != nil {
		return err
	}
	roles := map[string]*server{"leader": c.members[lead], "follower": c.members[(lead+1)%len(c.members)]}
	hc := &http.Client{Timeout: time.Duration(r.cfg.ProfileSeconds)*time.Second + 30*time.Second}
	for _, s := range roles {
		if err := httpGet(ctx, hc, s.url+"/debug/pprof/", io.Discard); err != nil {
			return fmt.Errorf("no pprof endpoint: %w", err)
		}
	}
	dir := filepath.Join(r.res.Dir, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(dir, sys.Name+"-"+w.name)
	cpuErr := make(chan error, len(roles))
	for role, s := range roles {
		go func() {
			cpuErr <- httpGetFile(ctx, hc, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", s.url, r.cfg.ProfileSeconds),
				base+"-"+role+"-cpu.pb.gz")
		}()
	}
	r.logf("%-13s profiling %s's leader and a follower: CPU for %ds while the workload runs", w.name, sys.Name, r.cfg.ProfileSeconds)
	wctx, cancel := context.WithTimeout(ctx, r.cfg.Sizes.RunTimeout)
	defer cancel()
	var (
		werr       error
		errs       []error
		iterations int
	)
	for received := 0; received < len(roles) && iterations < 1000; {
		_, werr = w.clusterRun(wctx, r, c)
		iterations++
		if werr != nil {
			break
		}
		for more := true; more; {
			select {
			case err := <-cpuErr:
				received++
				errs = append(errs, err)
			default:
				more = false
			}
		}
	}
	for len(errs) < len(roles) {
		errs = append(errs, <-cpuErr)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	for role, s := range roles {
		if err := httpGetFile(ctx, hc, s.url+"/debug/pprof/heap", base+"-"+role+"-heap.pb.gz"); err != nil {
			return fmt.Errorf("heap profile of the %s: %w", role, err)
		}
		r.res.Profiles = append(r.res.Profiles, base+"-"+role+"-cpu.pb.gz", base+"-"+role+"-heap.pb.gz")
	}
	r.logf("%-13s profiles of %s's leader and a follower (%d workload iterations) in %s-{leader,follower}-{cpu,heap}.pb.gz",
		w.name, sys.Name, iterations, base)
	if werr != nil {
		r.note("profiled run of %s on %s failed: %v", w.name, sys.Name, firstLine(werr))
	}
	return nil
}
