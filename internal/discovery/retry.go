package discovery

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// maxBackoffExp caps the backoff between attempts at 2^8 s, as etcd's.
const maxBackoffExp = 8

// retrier paces attempts after errors reaching the discovery service: the
// n-th consecutive failure waits 2^min(n,8) seconds. There is no attempt
// limit (etcd's is 2^32). A success resets the count.
type retrier struct {
	lg    *zap.Logger
	info  bool // v2 logs the retry at info, v3 at warn
	n     uint
	sleep func(context.Context, time.Duration) error
}

// wait logs the retry and sleeps before the next attempt of step.
func (r *retrier) wait(ctx context.Context, step string, fields ...zap.Field) error {
	r.n++
	d := time.Duration(1) << min(r.n, maxBackoffExp) * time.Second
	fields = append(fields, zap.String("reason", step), zap.Duration("backoff", d))
	if r.info {
		r.lg.Info("retry connecting to discovery service", fields...)
	} else {
		r.lg.Warn("retry connecting to discovery service", fields...)
	}
	return r.sleep(ctx, d)
}

func (r *retrier) reset() { r.n = 0 }

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
