package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// server is one single-member cluster of some system (cairn or etcd) running
// from a fresh data directory on a loopback address.
type server struct {
	sys      System
	dir      string // owned temp dir: data/, server.log
	dataDir  string
	logPath  string
	endpoint string // host:port of the client URL
	url      string // http://host:port
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	cli      *clientv3.Client
	procs    *procSet
	args     []string // the flags of the last launch (relaunch reuses them)
}

// freePorts asks the kernel for n distinct free ports on ip. Every port is
// held until all are chosen: a port released at once may be handed out
// again by the next request (a member given the same client and peer port
// exits at start-up with "address already in use"). The ports are released
// before the server binds them; on a loopback address nobody else is racing
// for them.
func freePorts(ip string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func newClient(endpoint string) (*clientv3.Client, error) { return newClientTo([]string{endpoint}) }

func newClientTo(endpoints []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
}

// startServer starts sys on ip with a fresh data dir under root and waits,
// up to readyTimeout, until it serves a linearizable read.
func startServer(ctx context.Context, procs *procSet, sys System, root, ip string, extra []string,
	readyTimeout time.Duration) (*server, error) {
	s, peer, err := newServer(sys, root, ip)
	if err != nil {
		return nil, err
	}
	args := append(memberArgs(s, "bench", peer), "--initial-cluster", "bench="+peer)
	if err := s.launch(procs, append(args, extra...)); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, readyTimeout); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// newServer prepares (does not start) a member of sys on ip: its own temp
// dir under root and free client and peer ports. It returns the peer URL.
func newServer(sys System, root, ip string) (*server, string, error) {
	dir, err := os.MkdirTemp(root, "srv-"+sys.Name+"-")
	if err != nil {
		return nil, "", err
	}
	ports, err := freePorts(ip, 2)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	cp, pp := ports[0], ports[1]
	s := &server{
		sys: sys, dir: dir, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "server.log"),
		endpoint: net.JoinHostPort(ip, strconv.Itoa(cp)), exited: make(chan struct{}),
	}
	s.url = "http://" + s.endpoint
	return s, "http://" + net.JoinHostPort(ip, strconv.Itoa(pp)), nil
}

// memberArgs are the flags every member gets: name, data dir, URLs.
func memberArgs(s *server, name, peer string) []string {
	return []string{
		"--name", name,
		"--data-dir", s.dataDir,
		"--listen-client-urls", s.url,
		"--advertise-client-urls", s.url,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
	}
}

// launch starts the server process through procs (its own process group,
// killed and reaped with the others) with its output in server.log. On
// error the server's dir is removed.
func (s *server) launch(procs *procSet, args []string) error {
	s.procs = procs
	logf, err := os.Create(s.logPath)
	if err != nil {
		os.RemoveAll(s.dir)
		return err
	}
	return s.startProc(procs, args, logf)
}

// relaunch starts a server that has exited (killed on purpose) again with
// the same flags and data dir; its output is appended to server.log.
func (s *server) relaunch() error {
	if s.alive() {
		return fmt.Errorf("relaunch %s: still running", s.endpoint)
	}
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	s.exited, s.waitErr = make(chan struct{}), nil
	return s.startProc(s.procs, s.args, logf)
}

func (s *server) startProc(procs *procSet, args []string, logf *os.File) error {
	s.args = args
	s.cmd = exec.Command(s.sys.Binary, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := procs.start(s.cmd, s.sys.Name); err != nil {
		s.cmd = nil
		logf.Close()
		os.RemoveAll(s.dir)
		return fmt.Errorf("start %s: %w", s.sys.Name, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		logf.Close()
		procs.reaped(s.cmd.Process.Pid)
		close(s.exited)
	}()
	return nil
}

func (s *server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	cli, err := newClient(s.endpoint)
	if err != nil {
		return err
	}
	s.cli = cli
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v\n%s", s.sys.Name, timeout, lastErr, s.logTail())
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Get(rctx, "cairnbench-ready")
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.exited:
			return s.startupExit()
		case <-tick.C:
		}
	}
}

// startupExit describes a server that exited before it was ready: "not
// supported" when its log holds one of the specific refusals of
// notSupportedRefusals, a failure otherwise.
func (s *server) startupExit() error {
	b, _ := os.ReadFile(s.logPath)
	if reason := refusalIn(string(b)); reason != "" {
		return notSupported("%s refuses to start: %s", s.sys.Name, reason)
	}
	return fmt.Errorf("%s exited during startup (%v)\n%s", s.sys.Name, s.waitErr, s.logTail())
}

// alive reports whether the server process is still running.
func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop terminates the server (SIGTERM, then SIGKILL after a deadline), waits
// for it and removes its directory.
func (s *server) stop() {
	if s.cli != nil {
		s.cli.Close()
	}
	if s.alive() {
		_ = syscall.Kill(-s.pid(), syscall.SIGTERM)
		t := time.NewTimer(10 * time.Second)
		select {
		case <-s.exited:
		case <-t.C:
			_ = syscall.Kill(-s.pid(), syscall.SIGKILL)
			<-s.exited
		}
		t.Stop()
	}
	_ = os.RemoveAll(s.dir)
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "--- " + s.sys.Name + " log tail ---\n" + string(b)
}

// procStatus reads VmRSS and VmHWM (bytes) from /proc/<pid>/status.
func procStatus(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseProcStatus(b)
}

func parseProcStatus(b []byte) (rss, hwm int64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	found := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[2] != "kB" {
			continue
		}
		v, perr := strconv.ParseInt(f[1], 10, 64)
		if perr != nil {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss = v * 1024
			found++
		case "VmHWM:":
			hwm = v * 1024
			found++
		}
	}
	if found != 2 {
		return 0, 0, errors.New("VmRSS/VmHWM not found in /proc status")
	}
	return rss, hwm, nil
}

// dirSize sums the disk usage (allocated blocks, like du) of the regular
// files under dir; preallocated WAL space counts, as it is taken from the disk.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			} else {
				n += info.Size()
			}
		}
		return nil
	})
	return n, err
}

// clockTicks is the kernel's USER_HZ, the unit of utime and stime in
// /proc/<pid>/stat (100 on every Linux architecture this harness runs on).
const clockTicks = 100

// procCPU returns the CPU time (user + system) a process has used, from
// /proc/<pid>/stat, with a resolution of one clock tick (10 ms): divided
// over thousands of requests it gives the server's CPU cost per request.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcCPU(b)
}

func parseProcCPU(b []byte) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad utime/stime in /proc stat")
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}
