package framework

import (
	"net"
	"strconv"
	"testing"
)

// FreePort hands out bindable ports below the ephemeral range, never the
// same one twice in a process.
func TestFreePortBelowEphemeralRange(t *testing.T) {
	hi := ephemeralLow()
	if hi-portFloor < 1000 {
		t.Skipf("ephemeral range starts at %d: FreePort falls back to the kernel's choice", hi)
	}
	seen := map[int]bool{}
	for range 200 {
		p := FreePort(t, "127.0.0.1")
		if p < portFloor || p >= hi {
			t.Fatalf("port %d outside [%d, %d)", p, portFloor, hi)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	p := FreePort(t, "127.0.0.1")
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("port %d not bindable: %v", p, err)
	}
	l.Close()
}
