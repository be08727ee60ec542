package ctl

import "testing"

func TestCompactionArgs(t *testing.T) {
	_, stderr, code := runCtl(t, nil, "", "compaction")
	wantRun(t, stderr, code, ExitBadArgs, "Error: compaction command needs 1 argument\n")
	_, stderr, code = runCtl(t, nil, "", "compaction", "x")
	wantRun(t, stderr, code, ExitError, "Error: strconv.ParseInt: parsing \"x\": invalid syntax\n")
	// Prefixes of commands are accepted.
	_, stderr, code = runCtl(t, nil, "", "compact")
	wantRun(t, stderr, code, ExitBadArgs, "Error: compaction command needs 1 argument\n")
}
