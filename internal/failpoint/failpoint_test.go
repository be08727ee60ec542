package failpoint

import "testing"

// TestNormalBuildIsInert runs in both builds: without the tag no hook can
// be on whatever the environment says (the test binary is started with
// CAIRN_TEST_FAILPOINTS unset, so the tagged build has none on either).
func TestNormalBuildIsInert(t *testing.T) {
	if On(WatchDropEvent) || On(LeaseExpireEarly) || On(PutAckUnwritten) {
		t.Fatal("a hook is on in the test binary")
	}
	Crash(WALBeforeFsync) // must not kill the test
	if !Enabled && (Disk() != "" || Armed()) {
		t.Fatal("a normal build has a disk fault or armed points")
	}
}
