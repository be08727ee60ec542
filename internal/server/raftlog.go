package server

import (
	"fmt"

	"go.uber.org/zap"
)

// raftLogger adapts zap to raft.Logger. raft's own messages ("became
// leader at term N", ...) keep their wording, which operators grep for.
type raftLogger struct{ s *zap.SugaredLogger }

func newRaftLogger(lg *zap.Logger) *raftLogger {
	return &raftLogger{s: lg.WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

// routineInfo lists the formats of raft's Infof notices that are routine
// with asynchronous storage writes and are logged at debug level instead
// (raft v3.6.0's wording; a reworded notice is simply logged at info again).
//
// raft attaches the last in-progress index to the storage acknowledgement
// of every Ready while entries are being written, including Readys that
// only change the hard state (a new commit index). When the append
// goroutine answers several such Readys at once, the first
// acknowledgement marks the entries stable and the later ones name an
// index that is no longer in the unstable log, which raft reports and
// ignores. Under a steady write load that is dozens of lines a second on
// every member with nothing for an operator to do (etcd never sees them:
// it writes synchronously).
var routineInfo = map[string]bool{
	"entry at index %d missing from unstable log; ignoring": true,
}

func (l *raftLogger) Debug(v ...any)                 { l.s.Debug(v...) }
func (l *raftLogger) Debugf(format string, v ...any) { l.s.Debugf(format, v...) }
func (l *raftLogger) Error(v ...any)                 { l.s.Error(v...) }
func (l *raftLogger) Errorf(format string, v ...any) { l.s.Errorf(format, v...) }
func (l *raftLogger) Info(v ...any)                  { l.s.Info(v...) }
func (l *raftLogger) Infof(format string, v ...any) {
	if routineInfo[format] {
		l.s.Debugf(format, v...)
		return
	}
	l.s.Infof(format, v...)
}
func (l *raftLogger) Warning(v ...any) { l.s.Warn(v...) }
func (l *raftLogger) Warningf(format string, v ...any) {
	l.s.Warnf(format, v...)
}
func (l *raftLogger) Fatal(v ...any)                 { l.s.Fatal(v...) }
func (l *raftLogger) Fatalf(format string, v ...any) { l.s.Fatalf(format, v...) }

// Panic is raft's report of a broken invariant.
func (l *raftLogger) Panic(v ...any) { l.s.Panic(v...) }
func (l *raftLogger) Panicf(format string, v ...any) {
	l.s.Panic(fmt.Sprintf(format, v...))
}
