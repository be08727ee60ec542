package framework

import (
	"os"
	"path/filepath"
	"testing"
)

// A ready line left in the log by an earlier process does not make the
// current one ready; a new line does.
func TestLoggedReadyCountsOnlyTheCurrentProcess(t *testing.T) {
	log := filepath.Join(t.TempDir(), "m.log")
	m := &Member{t: t, LogPath: log}
	appendLog := func(s string) {
		f, err := os.OpenFile(log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s + "\n"); err != nil {
			t.Fatal(err)
		}
	}

	if m.loggedReady() {
		t.Fatal("ready with no log at all")
	}
	appendLog(`{"msg":"` + readyLine + `"}`) // the first process
	appendLog(`{"msg":"stopped"}`)
	m.readyBefore = 1 // as Start records it for the second process
	if m.loggedReady() {
		t.Fatal("the first process's ready line counted for the second")
	}
	appendLog(`{"msg":"` + readyLine + `"}`)
	if !m.loggedReady() {
		t.Fatal("the second process's ready line did not count")
	}
}
