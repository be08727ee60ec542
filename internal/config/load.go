package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Load reads the configuration the way etcd 3.6.16 does: command line, then
// either the config file (--config-file or ETCD_CONFIG_FILE) or the ETCD_*
// variables, then validation. args is the whole command line including the
// program name (os.Args); environ is os.Environ(). Help and version go to
// stdout, flag syntax errors and usage to stderr.
//
// On success the returned Config is validated and resolved (data-dir and
// initial-cluster defaults filled in), and c.ParseLogs() holds the log lines
// etcd writes while starting, for WriteLogs. Every other outcome is an
// *ExitError saying what to log and which exit code to use.
func Load(args, environ []string, stdout, stderr io.Writer) (*Config, error) {
	prog, rest := "etcd", args
	if len(args) > 0 {
		prog, rest = args[0], args[1:]
	}
	if len(rest) > 0 && (rest[0] == "gateway" || rest[0] == "grpc-proxy") {
		err := fmt.Errorf("cairn does not support the %s subcommand", rest[0])
		fmt.Fprintln(stderr, err)
		return nil, &ExitError{Code: 1, Err: err, Printed: true}
	}
	l := &loader{cfg: Default(), stderr: stderr}
	var version bool
	fs := newFlagSet(l.cfg, &version, stderr)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, HelpText())
			return nil, &ExitError{Code: 0}
		}
		return nil, &ExitError{Code: 2, Err: err, Printed: true}
	}
	if fs.NArg() > 0 {
		return nil, l.fail(prog, rest, fmt.Errorf("%q is not a valid flag", fs.Arg(0)))
	}
	if version {
		fmt.Fprint(stdout, VersionText())
		return nil, &ExitError{Code: 0}
	}

	env := parseEnviron(environ)
	c := l.cfg
	if c.ConfigFile == "" {
		c.ConfigFile = env.get("ETCD_CONFIG_FILE")
	}
	var err error
	if c.ConfigFile != "" {
		fc, ferr := l.fromFile(c.ConfigFile)
		var ee *ExitError
		if errors.As(ferr, &ee) {
			return nil, ee
		}
		if ferr == nil {
			fc.ConfigFile = c.ConfigFile
			l.cfg, c = fc, fc
			if l.logger != nil {
				l.log(LogRecord{Level: zapcore.InfoLevel, Msg: "loaded server configuration, other configuration command line flags and environment variables will be ignored if provided", Fields: []zap.Field{zap.String("path", c.ConfigFile)}})
			}
		} else {
			// etcd keeps its command-line config when the file fails.
			l.logger = nil
			l.dropConfigured()
		}
		err = ferr
	} else {
		var ee *ExitError
		if err = l.fromCmdLine(fs, env); errors.As(err, &ee) {
			return nil, ee
		}
	}

	copyExperimental(c)
	if c.V2Deprecation != V2DeprWriteOnlySkipCheck {
		c.V2Deprecation = V2DeprWriteOnly
	}
	if uerr := c.checkUnary(); uerr != nil {
		err = uerr
	} else if c.WarningUnaryRequestDuration == 0 && c.ExperimentalWarningUnaryRequestDuration != 0 && l.logger != nil {
		l.warn("--experimental-warning-unary-request-duration is deprecated, and will be decommissioned in v3.7. Use --warning-unary-request-duration instead.")
	}
	if l.logger != nil {
		for _, s := range flagTable {
			if msg, ok := deprecatedMsg[s.name]; ok && c.ExplicitlySet(s.name) {
				l.warn(msg)
			}
		}
	}
	if err != nil {
		return nil, l.fail(prog, rest, err)
	}

	l.log(LogRecord{Level: zapcore.InfoLevel, Msg: "Running: ", Fields: []zap.Field{zap.Strings("args", args)}})
	c.resolve(l)
	c.logger = l.logger
	c.parseLogs = l.logs
	return c, nil
}

// ParseLogs returns the log lines Load collected, for WriteLogs.
func (c *Config) ParseLogs() []LogRecord { return c.parseLogs }

// resolve fills in what etcd derives after validation.
func (c *Config) resolve(l *loader) {
	if c.Name != DefaultName && c.InitialCluster == DefaultName+"="+DefaultListenPeerURL {
		c.InitialCluster = c.InitialClusterFromName()
	}
	if c.DataDir == "" {
		c.DataDir = c.Name + ".etcd"
		l.log(LogRecord{Level: zapcore.WarnLevel, Msg: "'data-dir' was empty; using default", Fields: []zap.Field{zap.String("data-dir", c.DataDir)}})
	}
}

// InitialClusterFromName returns "<name>=<url>,..." for each advertised
// peer URL ("default" for an empty name).
func (c *Config) InitialClusterFromName() string {
	n := c.Name
	if n == "" {
		n = DefaultName
	}
	parts := make([]string, len(c.InitialAdvertisePeerURLs))
	for i := range c.InitialAdvertisePeerURLs {
		parts[i] = n + "=" + c.InitialAdvertisePeerURLs[i].String()
	}
	return strings.Join(parts, ",")
}

// copyExperimental copies each explicitly set --experimental-* value into
// its new field.
func copyExperimental(c *Config) {
	for _, r := range experimentalRenames {
		if !c.ExplicitlySet(r[0]) {
			continue
		}
		from, _ := lookupSpec(r[0])
		to, _ := lookupSpec(r[1])
		assign(to.field(c), from.field(c))
	}
}

// loader carries Load's state: the config being built, the collected log
// records and the configured logger once built.
type loader struct {
	cfg    *Config
	stderr io.Writer
	logs   []LogRecord
	logger *zap.Logger
}

func (l *loader) log(r LogRecord) { l.logs = append(l.logs, r) }
func (l *loader) boot(level zapcore.Level, msg string, fields ...zap.Field) {
	l.log(LogRecord{Bootstrap: true, Level: level, Msg: msg, Fields: fields})
}
func (l *loader) warn(msg string, fields ...zap.Field) {
	l.log(LogRecord{Level: zapcore.WarnLevel, Msg: msg, Fields: fields})
}

// dropConfigured turns the records meant for a configured logger that was
// discarded into bootstrap ones.
func (l *loader) dropConfigured() {
	for i := range l.logs {
		l.logs[i].Bootstrap = true
	}
}

// buildLogger builds the configured logger during validation, as etcd does.
func (l *loader) buildLogger(plan loggingPlan) error {
	lg, err := zapConfig(plan.level, plan.encoding, plan.outputs).Build()
	if err != nil {
		return err
	}
	l.logger = lg
	return nil
}

// fail turns a verification error into the exit etcd takes.
func (l *loader) fail(prog string, args []string, err error) error {
	if errors.Is(err, ErrUnrecognizedLevel) {
		fmt.Fprintf(l.stderr, "panic: %s\n", err.Error())
		return &ExitError{Code: 2, Err: err, Printed: true}
	}
	l.log(LogRecord{Level: zapcore.InfoLevel, Msg: "Running: ", Fields: []zap.Field{zap.Strings("args", append([]string{prog}, args...))}})
	l.warn("failed to verify flags", zap.Error(err))
	if errors.Is(err, ErrUnsetAdvertiseClientURLs) {
		l.warn("advertise client URLs are not set", zap.Error(err))
	}
	return &ExitError{Code: 1, Err: err, Logs: l.logs, Logger: l.logger}
}

// environ is the process environment as ordered pairs.
type environ struct {
	pairs [][2]string // name, value; value "" and ok=false for malformed
	raw   []string
}

func parseEnviron(env []string) *environ {
	e := &environ{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		e.pairs = append(e.pairs, [2]string{k, v})
		e.raw = append(e.raw, kv)
	}
	return e
}

// get returns the first value of name, like os.Getenv.
func (e *environ) get(name string) string {
	for _, p := range e.pairs {
		if p[0] == name {
			return p[1]
		}
	}
	return ""
}

func (e *environ) remove(name string) {
	var pairs [][2]string
	var raw []string
	for i, p := range e.pairs {
		if p[0] != name {
			pairs = append(pairs, p)
			raw = append(raw, e.raw[i])
		}
	}
	e.pairs, e.raw = pairs, raw
}

// EnvName is the ETCD_* variable of a flag.
func EnvName(flagName string) string {
	return "ETCD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// fromCmdLine applies the environment to flags not given, then checks.
func (l *loader) fromCmdLine(fs *flag.FlagSet, env *environ) error {
	c := l.cfg
	if v := env.get("ETCD_VERSION"); v != "" {
		env.remove("ETCD_VERSION")
		l.boot(zapcore.WarnLevel, "cannot set special environment variable", zap.String("key", "ETCD_VERSION"), zap.String("value", v))
	}
	onCmdLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCmdLine[EnvName(f.Name)] = true })
	used := map[string]bool{}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		key := EnvName(f.Name)
		if onCmdLine[key] {
			return
		}
		val := env.get(key)
		if val == "" {
			return
		}
		used[key] = true
		if err := fs.Set(f.Name, val); err != nil {
			envErr = fmt.Errorf("invalid value %q for %s: %w", val, key, err)
			return
		}
		l.boot(zapcore.InfoLevel, "recognized and used environment variable", zap.String("variable-name", key), zap.String("variable-value", val))
	})
	for i, p := range env.pairs {
		if !strings.Contains(env.raw[i], "=") {
			l.boot(zapcore.WarnLevel, "found invalid environment variable", zap.String("environment-variable", env.raw[i]))
		}
		if used[p[0]] {
			continue
		}
		if onCmdLine[p[0]] {
			msg := "conflicting environment variable is shadowed by corresponding command-line flag (either unset environment variable or disable flag))"
			l.log(LogRecord{Bootstrap: true, Level: zapcore.FatalLevel, Msg: msg, Fields: []zap.Field{zap.String("environment-variable", p[0])}})
			return &ExitError{Code: 1, Err: fmt.Errorf("%s: %s", msg, p[0]), Logs: l.logs}
		}
		if strings.HasPrefix(env.raw[i], "ETCD_") {
			l.boot(zapcore.WarnLevel, "unrecognized environment variable", zap.String("environment-variable", env.raw[i]))
		}
	}
	if envErr != nil {
		return envErr
	}
	if c.RaftReadTimeout < DefaultRaftTimeout {
		c.RaftReadTimeout = DefaultRaftTimeout
		l.boot(zapcore.InfoLevel, "raft-read-timeout increased to minimum value: 5s")
	}
	if c.RaftWriteTimeout < DefaultRaftTimeout {
		c.RaftWriteTimeout = DefaultRaftTimeout
		l.boot(zapcore.InfoLevel, "raft-write-timeout increased to minimum value: 5s")
	}
	fs.Visit(func(f *flag.Flag) { c.setExplicit(f.Name) })
	if c.ExplicitlySet("listen-client-urls") && !c.ExplicitlySet("advertise-client-urls") {
		c.AdvertiseClientURLs = nil
	}
	if (c.Discovery != "" || c.DiscoverySRV != "" || c.DiscoverySRVName != "" || len(c.DiscoveryCfg.Client.Endpoints) > 0) && !c.ExplicitlySet("initial-cluster") {
		c.InitialCluster = ""
	}
	c.gatesText = c.FeatureGates.String()
	if err := c.checkGateClash(); err != nil {
		return err
	}
	if err := c.checkFallback(); err != nil {
		return err
	}
	return c.checkBody(l.warn, l.buildLogger)
}
