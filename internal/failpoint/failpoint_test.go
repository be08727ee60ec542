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
	if On(WatchDropEvent) || On(LeaseExpireEarly) || On(PutAckUnwritten) {
		t.Fatal("a hook is on in the test binary")
	}
}
