package ctl

import (
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const envPrefix = "ETCDCTL"

// envName is the variable for a flag: ETCDCTL_ + upper case, '-' → '_'.
func envName(flag string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Log lines about the environment carry the caller etcdctl's own lines
// carry (its flag package), so that tools grepping them see the same bytes.
const (
	envLogCallerFile    = "flags/flag.go"
	envLogLineInvalid   = 80
	envLogLineConflict  = 86
	envLogLineUnknown   = 94
	envLogMsgInvalid    = "found invalid environment variable"
	envLogMsgConflict   = "conflicting environment variable is shadowed by corresponding command-line flag (either unset environment variable or disable flag))"
	envLogMsgUnknown    = "unrecognized environment variable"
	envLogFieldVariable = "environment-variable"
)

// applyEnv sets each flag of fs not given on the command line from its
// non-empty ETCDCTL_* variable (a bad value is ignored, as in etcdctl).
// Then it checks the environment in order: a variable whose flag was given
// on the command line, even empty, is fatal (exit 1, no "Error:" line); an
// ETCDCTL_* variable matching no flag draws a warning.
func (a *app) applyEnv(fs *pflag.FlagSet) error {
	given := map[string]bool{}
	used := map[string]bool{}
	fs.VisitAll(func(f *pflag.Flag) {
		key := envName(f.Name)
		if f.Changed {
			given[key] = true
			return
		}
		if v := a.getenv(key); v != "" {
			used[key] = true
			_ = fs.Set(f.Name, v)
		}
	})
	for _, kv := range a.environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok {
			a.logEnv(zapcore.WarnLevel, envLogLineInvalid, envLogMsgInvalid, kv)
		}
		if used[name] {
			continue
		}
		if given[name] {
			a.logEnv(zapcore.FatalLevel, envLogLineConflict, envLogMsgConflict, name)
			return exitSilently(ExitError)
		}
		if strings.HasPrefix(kv, envPrefix+"_") {
			a.logEnv(zapcore.WarnLevel, envLogLineUnknown, envLogMsgUnknown, kv)
		}
	}
	return nil
}

// logEnv writes one JSON log line in etcd's format to stderr.
func (a *app) logEnv(level zapcore.Level, line int, msg, variable string) {
	a.logAt(level, envLogCallerFile, line, msg, zap.String(envLogFieldVariable, variable))
}

// logAt writes one JSON log line in etcd's format to stderr, attributed to
// file:line: the caller etcdctl's own line carries, so that tools grepping
// the logs see the same bytes.
func (a *app) logAt(level zapcore.Level, file string, line int, msg string, fields ...zap.Field) {
	enc := zapcore.NewJSONEncoder(logutil.DefaultZapLoggerConfig.EncoderConfig)
	core := zapcore.NewCore(enc, zapcore.AddSync(a.stderr), zapcore.DebugLevel)
	ent := zapcore.Entry{
		Level:   level,
		Time:    time.Now(),
		Message: msg,
		Caller:  zapcore.NewEntryCaller(0, file, line, true),
	}
	_ = core.Write(ent, fields)
}
