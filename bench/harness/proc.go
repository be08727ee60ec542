package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// procSet tracks every child process the harness starts, so that all of them
// (and anything they spawned) can be killed on error, on Ctrl-C and at the end
// of a run. Each child is the leader of its own process group: signals go to
// the whole group, and the terminal's Ctrl-C reaches only the harness, which
// then shuts the children down itself.
type procSet struct {
	mu      sync.Mutex
	live    map[int]string // pid (= pgid) -> name
	onStart func(pid int, name string)
}

func newProcSet(onStart func(pid int, name string)) *procSet {
	return &procSet{live: map[int]string{}, onStart: onStart}
}

func sysProcAttr() *syscall.SysProcAttr {
	// Pdeathsig is a last resort if the harness itself is SIGKILLed.
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// start starts cmd in its own process group and records it.
func (p *procSet) start(cmd *exec.Cmd, name string) error {
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	p.mu.Lock()
	p.live[cmd.Process.Pid] = name
	p.mu.Unlock()
	if p.onStart != nil {
		p.onStart(cmd.Process.Pid, name)
	}
	return nil
}

// reaped forgets a process after Wait returned. Its group is killed once more
// in case the leader left children behind.
func (p *procSet) reaped(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	p.mu.Lock()
	delete(p.live, pid)
	p.mu.Unlock()
}

// killAll SIGKILLs the process group of every process still recorded. The
// owners of those processes still Wait for them.
func (p *procSet) killAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pid := range p.live {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

func (p *procSet) liveCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.live)
}

// errTimeout marks a command that was killed because its deadline passed.
var errTimeout = errors.New("timed out")

// run runs a command to completion with a deadline. On deadline or when ctx is
// cancelled the whole process group is killed. The returned error wraps
// errTimeout when the deadline (not the parent ctx) ended it.
func (p *procSet) run(ctx context.Context, timeout time.Duration, name, dir string, env []string,
	stdout, stderr io.Writer, bin string, args ...string) error {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := p.start(cmd, name); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	err := cmd.Wait()
	p.reaped(cmd.Process.Pid)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", name, ctx.Err())
		}
		if rctx.Err() != nil {
			return fmt.Errorf("%s: %w after %s", name, errTimeout, timeout)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
