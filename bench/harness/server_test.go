package harness

import "testing"

// TestFreePortsAreDistinct: a port released at once can be handed out again
// by the next request (about 1 in 7,000 pairs here), which gave a member the
// same client and peer port; freePorts holds each until all are chosen.
func TestFreePortsAreDistinct(t *testing.T) {
	for i := 0; i < 5000; i++ {
		ports, err := freePorts("127.0.0.8", 2)
		if err != nil {
			t.Fatal(err)
		}
		if ports[0] == ports[1] {
			t.Fatalf("freePorts gave port %d twice", ports[0])
		}
	}
}
