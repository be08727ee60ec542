package config

import (
	"errors"
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Sentinel errors. Validate and Load wrap them with %w where a text carries
// values; compare with errors.Is.
var (
	// ErrUnsetAdvertiseClientURLs is returned when --listen-client-urls was
	// set on the command line or environment without --advertise-client-urls.
	ErrUnsetAdvertiseClientURLs = errors.New("--advertise-client-urls is required when --listen-client-urls is set explicitly")
	// ErrConflictBootstrapFlags is returned when more than one bootstrap
	// method is configured.
	ErrConflictBootstrapFlags = errors.New(`multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery", "discovery-endpoints" or "discovery-srv"`)
	// ErrLogRotationInvalidLogOutput is returned when log rotation is on
	// without exactly one file output.
	ErrLogRotationInvalidLogOutput = errors.New("--log-outputs requires a single file path when --log-rotate-config-json is defined")
	// ErrUnsupported is wrapped by CheckSupported's error.
	ErrUnsupported = errors.New("not supported yet")
	// ErrUnrecognizedLevel is wrapped when --log-level is unknown; etcd
	// panics on it (exit 2).
	ErrUnrecognizedLevel = errors.New("unrecognized level")
)

// ExitError ends the process with Code. Load returns it for every outcome
// except "start the server":
//   - Code 0: --help or --version, output already written.
//   - Code 2: flag syntax error, message and usage already written to stderr.
//   - Code 1: verification error; the caller writes Logs, then exits.
//
// For code 1, Logs end with the record(s) describing the failure: usually
// warn "failed to verify flags" with the error, or a fatal record (a
// shadowed ETCD_* variable) whose logging itself exits. Printed reports that
// the message is already on stderr and nothing needs logging.
type ExitError struct {
	Code    int
	Err     error
	Printed bool
	// Logs are the records to write before exiting, in order (see LogRecord).
	Logs []LogRecord
	// Logger is the configured logger when validation got far enough to
	// build it; etcd writes the failure through it. Nil otherwise.
	Logger *zap.Logger
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// LogRecord is a log line etcd writes while reading its configuration. Load
// collects them because the configured logger does not exist yet.
type LogRecord struct {
	// Bootstrap records go to a default logger (info level, JSON, stderr),
	// as etcd writes them before the configured logger exists; the others go
	// to the configured logger.
	Bootstrap bool
	Level     zapcore.Level
	Msg       string
	Fields    []zap.Field
}

// WriteLogs writes recs: bootstrap records through boot, the others through
// lg (boot when lg is nil). A fatal record exits the process after writing,
// as zap's Fatal does.
func WriteLogs(boot, lg *zap.Logger, recs []LogRecord) {
	for _, r := range recs {
		l := lg
		if r.Bootstrap || l == nil {
			l = boot
		}
		if l == nil {
			continue
		}
		if ce := l.Check(r.Level, r.Msg); ce != nil {
			ce.Write(r.Fields...)
		}
	}
}

// BootstrapLogger is the logger etcd uses before the configuration is
// known: JSON, info level, stderr.
func BootstrapLogger() (*zap.Logger, error) {
	return zapConfig(zapcore.InfoLevel, "json", []string{"stderr"}).Build()
}
