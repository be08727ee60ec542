package ctl

import (
	"io"

	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// consoleLogger is etcdutl's logger: zap's console encoding of etcd's
// encoder config, info level, to w.
func consoleLogger(w io.Writer) *zap.Logger {
	enc := zapcore.NewConsoleEncoder(logutil.DefaultZapLoggerConfig.EncoderConfig)
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.InfoLevel), zap.AddCaller())
}

// jsonLogger is etcdctl's logger (etcd's default zap config) writing to w.
func jsonLogger(w io.Writer) *zap.Logger {
	enc := zapcore.NewJSONEncoder(logutil.DefaultZapLoggerConfig.EncoderConfig)
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.InfoLevel), zap.AddCaller())
}
