//go:build cairn_failpoints

package failpoint

import "testing"

func TestParse(t *testing.T) {
	if m := parse(""); m["watch-drop-event"] {
		t.Fatal("empty variable activates a hook")
	}
	m := parse(" watch-drop-event, put-ack-unwritten ,")
	if !m[WatchDropEvent] || !m[PutAckUnwritten] || m[LeaseExpireEarly] || len(m) != 2 {
		t.Fatalf("parse: %v", m)
	}
	for _, c := range []struct {
		in    string
		point string
		n     int64
	}{{"", "", 0}, {"wal-before-fsync", "wal-before-fsync", 1}, {"defrag-before-swap:7", "defrag-before-swap", 7}, {"x:0", "x", 1}, {"x:bad", "x", 1}} {
		if p, n := parseCrash(c.in); p != c.point || n != c.n {
			t.Errorf("parseCrash(%q) = %q, %d; want %q, %d", c.in, p, n, c.point, c.n)
		}
	}
}
