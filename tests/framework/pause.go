package framework

import "syscall"

// Pause stops the process (SIGSTOP) without ending it: its sockets stay
// open and its peers see it fall silent, as behind a network partition.
func (m *Member) Pause() { m.send(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (m *Member) Resume() { m.send(syscall.SIGCONT) }

// send delivers sig without waiting for the process to exit.
func (m *Member) send(sig syscall.Signal) {
	m.mu.Lock()
	cmd := m.cmd
	m.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(sig)
	}
}
