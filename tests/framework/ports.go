package framework

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Ports for test servers come from below the kernel's ephemeral range.
//
// A port taken from the ephemeral range (listen on :0, close, hand the
// number to a server that binds it later) can be taken in between by any
// outgoing connection's source port: with test packages, reference servers
// and clients running side by side that happened, and a member failed to
// start with "address already in use". Ports below the range are never
// chosen by the kernel, so only another test process picking the same random
// port can collide, which the bind check and the random choice make rare.
const (
	portFloor = 20000 // lowest port handed out
	portTries = 64    // random picks before falling back to the kernel's choice
)

var (
	portMu     sync.Mutex
	portsGiven = map[int]bool{} // ports this process handed out, never twice
)

// ephemeralLow is the first port of the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range), 32768 when unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// FreePort returns a TCP port that was free on host a moment ago, chosen
// below the ephemeral range (see above) and never the same twice in one
// process.
func FreePort(t testing.TB, host string) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	if hi := ephemeralLow(); hi-portFloor >= 1000 {
		for range portTries {
			p := portFloor + rand.IntN(hi-portFloor)
			if portsGiven[p] {
				continue
			}
			l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
			if err != nil {
				continue
			}
			l.Close()
			portsGiven[p] = true
			return p
		}
	}
	for range portTries {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !portsGiven[p] {
			portsGiven[p] = true
			return p
		}
	}
	t.Fatalf("free port: no port on %s that this process has not handed out already", host)
	return 0
}
