package ctl

import "testing"

func TestAlarmArgs(t *testing.T) {
	_, stderr, code := runCtl(t, nil, "", "alarm", "list", "x")
	wantRun(t, stderr, code, ExitBadArgs, "Error: alarm list command accepts no arguments\n")
	_, stderr, code = runCtl(t, nil, "", "alarm", "disarm", "x")
	wantRun(t, stderr, code, ExitBadArgs, "Error: alarm disarm command accepts no arguments\n")
}
