package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// The v2 reference: etcd 3.4 from Debian's etcd-server package.
const (
	debianEtcd     = "/usr/bin/etcd"
	policyRCD      = "/usr/sbin/policy-rc.d"
	debianPackages = "etcd-server etcd-client"
)

// v2Reference returns the v2 reference system: the binary at path, or
// Debian's etcd (installed with apt-get when missing) when path is "".
// It is named etcd-<version>-v2, e.g. etcd-3.4.23-v2.
func (r *runner) v2Reference(ctx context.Context, path string) (System, error) {
	if path == "" {
		path = debianEtcd
		if !isExecutable(path) {
			if err := r.installDebianEtcd(ctx); err != nil {
				return System{}, fmt.Errorf("v2 reference (Debian's etcd-server, for the v2-* workloads; "+
					"--workloads can leave them out): %w", err)
			}
		}
	}
	if !isExecutable(path) {
		return System{}, fmt.Errorf("v2 reference %s: not an executable file", path)
	}
	var out bytes.Buffer
	if err := r.procs.run(ctx, 10*time.Second, "version", r.work, os.Environ(), &out, &out, path, "--version"); err != nil {
		return System{}, fmt.Errorf("v2 reference %s --version: %w\n%s", path, err, tail(out.String(), 500))
	}
	v := v2RefVersion(out.String())
	if v == "" {
		return System{}, fmt.Errorf("v2 reference %s: no \"etcd Version:\" in %q", path, tail(out.String(), 300))
	}
	return System{Name: "etcd-" + v + "-v2", Binary: path, Version: "etcd Version: " + v, V2: true}, nil
}

// installDebianEtcd runs apt-get install -y etcd-server etcd-client
// non-interactively, as root, under a lock shared by concurrent harness
// runs. The package's postinst would start a system etcd: a policy-rc.d
// that exits 101 forbids that during the install (an existing one is put
// back afterwards), and any etcd process that appeared during the install
// and is not the harness's own is killed by PID afterwards.
func (r *runner) installDebianEtcd(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s is missing and installing it needs root: apt-get install -y %s", debianEtcd, debianPackages)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("%s is missing and there is no apt-get to install %s: %w", debianEtcd, debianPackages, err)
	}
	if err := os.MkdirAll(RefsDir(), 0o755); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, filepath.Join(RefsDir(), ".apt-lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if isExecutable(debianEtcd) {
		return nil // installed by a concurrent run
	}

	restore, err := denyServiceStarts()
	if err != nil {
		return err
	}
	defer restore()
	before := etcdPIDs()
	r.logf("installing Debian's %s (apt-get; the v2 reference etcd 3.4)", debianPackages)
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "NEEDRESTART_MODE=a")
	apt := func(args ...string) error {
		var out bytes.Buffer
		if err := r.procs.run(ctx, 10*time.Minute, "apt-get", "/", env, &out, &out, "apt-get", args...); err != nil {
			return fmt.Errorf("apt-get %v: %w\n%s", args, err, tail(out.String(), 2000))
		}
		return nil
	}
	install := []string{"install", "-y", "--no-install-recommends", "-o", "Dpkg::Options::=--force-confdef",
		"-o", "Dpkg::Options::=--force-confold", "etcd-server", "etcd-client"}
	err = apt(install...)
	if err != nil && ctx.Err() == nil {
		// Stale or missing package lists: update once and retry.
		if uerr := apt("update"); uerr != nil {
			err = errors.Join(err, uerr)
		} else {
			err = apt(install...)
		}
	}
	r.stopPackageDaemons(before)
	if err != nil {
		return err
	}
	if !isExecutable(debianEtcd) {
		return fmt.Errorf("apt-get installed %s but %s is missing", debianPackages, debianEtcd)
	}
	return nil
}

// denyServiceStarts installs a policy-rc.d that forbids starting services
// and returns the function that puts the previous state back.
func denyServiceStarts() (func(), error) {
	saved := policyRCD + ".cairnbench-saved"
	hadOne := false
	if _, err := os.Lstat(policyRCD); err == nil {
		if err := os.Rename(policyRCD, saved); err != nil {
			return nil, err
		}
		hadOne = true
	}
	if err := os.WriteFile(policyRCD, []byte("#!/bin/sh\n# cairnbench: no service starts while it installs etcd-server\nexit 101\n"), 0o755); err != nil {
		if hadOne {
			_ = os.Rename(saved, policyRCD)
		}
		return nil, err
	}
	return func() {
		_ = os.Remove(policyRCD)
		if hadOne {
			_ = os.Rename(saved, policyRCD)
		}
	}, nil
}

// etcdPIDs lists the processes running Debian's etcd binary.
func etcdPIDs() map[int]bool {
	out := map[int]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == debianEtcd {
			out[pid] = true
		}
	}
	return out
}

// stopPackageDaemons kills, by PID, every Debian etcd that appeared since
// before and was not started by the harness: a daemon the package started
// despite policy-rc.d. With systemd running, the unit is also stopped and
// disabled.
func (r *runner) stopPackageDaemons(before map[int]bool) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if _, err := exec.LookPath("systemctl"); err == nil {
			_ = exec.Command("systemctl", "disable", "--now", "etcd").Run()
		}
	}
	r.procs.mu.Lock()
	ours := map[int]bool{}
	for pid := range r.procs.live {
		ours[pid] = true
	}
	r.procs.mu.Unlock()
	for pid := range etcdPIDs() {
		if before[pid] || ours[pid] {
			continue
		}
		r.note("killed etcd daemon %d started by the etcd-server package install", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
