package server

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// The routine notice (raft v3.6.0's log_unstable.go wording) goes to debug;
// other notices, including the rarer snapshot one, stay at info.
func TestRaftLoggerDemotesRoutineAsyncNotices(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := newRaftLogger(zap.New(core))

	l.Infof("entry at index %d missing from unstable log; ignoring", 7)
	l.Infof("entry at index %d matched unstable snapshot; ignoring", 8)
	l.Infof("%x became leader at term %d", uint64(1), uint64(2))

	got := logs.All()
	if len(got) != 3 {
		t.Fatalf("logged %d entries, want 3", len(got))
	}
	for i, want := range []struct {
		msg   string
		level zapcore.Level
	}{
		{"entry at index 7 missing from unstable log; ignoring", zapcore.DebugLevel},
		{"entry at index 8 matched unstable snapshot; ignoring", zapcore.InfoLevel},
		{"1 became leader at term 2", zapcore.InfoLevel},
	} {
		if got[i].Message != want.msg || got[i].Level != want.level {
			t.Errorf("entry %d: %q at %v, want %q at %v", i, got[i].Message, got[i].Level, want.msg, want.level)
		}
	}
}
