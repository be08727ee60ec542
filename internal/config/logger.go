package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapConfig is etcd's zap configuration (keys level, ts, caller, msg; ts as
// 2006-01-02T15:04:05.000000Z0700; sampling 100/100) for the given level,
// encoding and output paths.
func zapConfig(level zapcore.Level, encoding string, outputs []string) zap.Config {
	zc := logutil.DefaultZapLoggerConfig
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.Encoding = encoding
	zc.OutputPaths = outputs
	zc.ErrorOutputPaths = outputs
	return logutil.MergeOutputPaths(zc)
}

// rotationConfig mirrors the lumberjack settings of --log-rotation-config-json.
type rotationConfig struct {
	Filename   string `json:"filename"`
	MaxSize    int    `json:"maxsize"`
	MaxAge     int    `json:"maxage"`
	MaxBackups int    `json:"maxbackups"`
	LocalTime  bool   `json:"localtime"`
	Compress   bool   `json:"compress"`
}

// loggingPlan is the checked logging setting: what BuildLogger opens.
type loggingPlan struct {
	level    zapcore.Level
	encoding string
	outputs  []string
}

// checkLogging validates the logging flags in etcd's order without opening
// anything. An unknown level yields an error wrapping ErrUnrecognizedLevel
// (etcd panics: exit 2).
func (c *Config) checkLogging() (loggingPlan, error) {
	switch c.Logger {
	case "capnslog":
		return loggingPlan{}, errors.New("--logger=capnslog is removed in v3.5")
	case "zap":
	default:
		return loggingPlan{}, fmt.Errorf("unknown logger option %q", c.Logger)
	}
	outs := c.LogOutputs
	if len(outs) == 0 {
		outs = []string{LogOutputDefault}
	}
	if len(outs) > 1 && slices.Contains(outs, LogOutputDefault) {
		return loggingPlan{}, fmt.Errorf("multi logoutput for %q is not supported yet", LogOutputDefault)
	}
	if c.EnableLogRotation {
		if err := checkRotation(outs, c.LogRotationConfigJSON); err != nil {
			return loggingPlan{}, err
		}
	}
	var paths []string
	journal := false
	for _, o := range outs {
		switch o {
		case LogOutputDefault, LogOutputStderr:
			paths = append(paths, "stderr")
		case LogOutputStdout:
			paths = append(paths, "stdout")
		case LogOutputJournal:
			journal = true
		default:
			paths = append(paths, o)
		}
	}
	if journal && len(outs) > 1 {
		return loggingPlan{}, fmt.Errorf("running with systemd/journal but other '--log-outputs' values (%q) are configured with 'default'; override 'default' value with something else", outs)
	}
	var level zapcore.Level
	if err := level.Set(c.LogLevel); err != nil {
		return loggingPlan{}, fmt.Errorf("%w: %q", ErrUnrecognizedLevel, c.LogLevel)
	}
	enc, err := logutil.ConvertToZapFormat(c.LogFormat)
	if err != nil {
		return loggingPlan{}, err
	}
	if journal {
		// cairn has no journald writer: it logs to stderr, which systemd
		// forwards to the journal anyway.
		paths = []string{"stderr"}
	}
	return loggingPlan{level: level, encoding: enc, outputs: paths}, nil
}

func checkRotation(outs []string, cfgJSON string) error {
	files := 0
	for _, o := range outs {
		switch o {
		case LogOutputDefault, LogOutputStderr, LogOutputStdout:
		default:
			files++
		}
	}
	if (len(outs) == 1 && files == 0) || files > 1 {
		return ErrLogRotationInvalidLogOutput
	}
	var rc rotationConfig
	if err := json.Unmarshal([]byte(cfgJSON), &rc); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return fmt.Errorf("improperly formatted log rotation config: %w", err)
		case errors.As(err, &typ):
			return fmt.Errorf("invalid log rotation config: %w", err)
		default:
			return fmt.Errorf("fail to unmarshal log rotation config: %w", err)
		}
	}
	return nil
}

// BuildLogger builds the zap logger the configuration asks for (etcd's line
// shape: level, ts, caller, msg). After a successful Load it returns the
// logger Load already built. Log rotation is not implemented (see
// NotYetSupported); systemd/journal logs to stderr.
func BuildLogger(c *Config) (*zap.Logger, error) {
	if c.logger != nil {
		return c.logger, nil
	}
	plan, err := c.checkLogging()
	if err != nil {
		return nil, err
	}
	return zapConfig(plan.level, plan.encoding, plan.outputs).Build()
}
