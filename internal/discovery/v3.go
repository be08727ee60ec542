package discovery

import (
	"cmp"
	"context"
	"errors"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// registryPrefix is where v3 discovery keeps every token's keys.
const registryPrefix = "/_etcd/registry"

// V3Config is v3 discovery: the token and the client of the etcd cluster
// that serves as discovery service (etcd's --discovery-token and
// --discovery-* client flags).
type V3Config struct {
	Token  string
	Client clientv3.ConfigSpec
}

// JoinV3 registers member id, whose peer URLs are self ("name=url,..."),
// under cfg.Token and waits until the token's size of members registered.
// It returns the initial cluster ("name=url,...") of the first size members
// by registration. Errors are *Error; they wrap ErrSizeNotFound,
// ErrBadSizeKey, ErrFullCluster, ErrDuplicateName, ErrInvalidPeerURL or
// ctx's error. Failures to reach the service are retried without limit.
func JoinV3(ctx context.Context, lg *zap.Logger, cfg V3Config, id uint64, self string) (cluster string, err error) {
	lg = lg.With(zap.String("discovery-token", cfg.Token), zap.String("discovery-endpoints", strings.Join(cfg.Client.Endpoints, ",")))
	ccfg, err := clientv3.NewClientConfig(&cfg.Client, lg)
	if err != nil {
		return "", &Error{Err: err}
	}
	ccfg.Logger = lg.Named("etcd-client")
	c, err := clientv3.New(*ccfg)
	if err != nil {
		return "", &Error{Err: err}
	}
	defer c.Close()
	j := &v3join{
		lg: lg, reg: clientRegistry{c}, token: cfg.Token, id: id,
		timeout: cfg.Client.RequestTimeout,
		retry:   retrier{lg: lg, sleep: sleepCtx},
	}
	cluster, err = j.join(ctx, self)
	if err != nil {
		lg.Error("discovery failed to join cluster", zap.String("cluster", cluster), zap.Error(err))
		return "", &Error{Err: err}
	}
	lg.Info("discovery joined cluster successfully", zap.String("cluster", cluster))
	return cluster, nil
}

// registry is the part of an etcd client v3 discovery uses.
type registry interface {
	// get returns the key (or, with prefix, every key under it) and the
	// store's revision.
	get(ctx context.Context, key string, prefix bool) ([]regMember, int64, error)
	put(ctx context.Context, key, val string) error
	// watch reports every key written under prefix from revision rev on;
	// the channel closes when ctx ends or the watch fails.
	watch(ctx context.Context, prefix string, rev int64) <-chan []regMember
}

// regMember is one registration (or, for get of the size key, the key).
type regMember struct {
	key, value string
	rev        int64 // create revision
}

type v3join struct {
	lg      *zap.Logger
	reg     registry
	token   string
	id      uint64
	timeout time.Duration
	retry   retrier
}

func (j *v3join) sizeKey() string    { return path.Join(registryPrefix, j.token, "_config/size") }
func (j *v3join) membersKey() string { return path.Join(registryPrefix, j.token, "members") }
func (j *v3join) selfKey() string {
	return path.Join(j.membersKey(), strconv.FormatUint(j.id, 16))
}

func (j *v3join) join(ctx context.Context, self string) (string, error) {
	if _, _, _, err := j.check(ctx); err != nil {
		return "", err
	}
	if err := j.register(ctx, self); err != nil {
		return "", err
	}
	ms, size, rev, err := j.check(ctx)
	if err != nil {
		return "", err
	}
	for ms.len() < size {
		if j.waitPeers(ctx, ms, size, rev) {
			break
		}
		// The watch ended early (ctx, or the service failed it): read
		// the registrations again after a pause.
		if err := j.retry.wait(ctx, "waiting for other nodes"); err != nil {
			return "", err
		}
		if ms, size, rev, err = j.check(ctx); err != nil {
			return "", err
		}
	}
	return ms.initialCluster(size, ErrInvalidPeerURL)
}

// check reads the size and the registrations, retrying errors that are not
// about the size key, and fails with ErrFullCluster when this member is
// not among the first size registrations.
func (j *v3join) check(ctx context.Context) (*memberList, int, int64, error) {
	for {
		size, err := j.size(ctx)
		if errors.Is(err, ErrSizeNotFound) || errors.Is(err, ErrBadSizeKey) {
			return nil, 0, 0, err
		}
		var (
			ms  *memberList
			rev int64
		)
		if err == nil {
			ms, rev, err = j.members(ctx)
		}
		if err != nil {
			if werr := j.retry.wait(ctx, "cluster status check"); werr != nil {
				return nil, 0, 0, werr
			}
			continue
		}
		j.retry.reset()
		if !ms.within(j.selfKey(), size) {
			return ms, size, rev, ErrFullCluster
		}
		return ms, size, rev, nil
	}
}

func (j *v3join) size(ctx context.Context) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, j.timeout)
	kvs, _, err := j.reg.get(rctx, j.sizeKey(), false)
	cancel()
	if err != nil {
		j.lg.Warn("failed to get cluster size from discovery service", zap.String("clusterSizeKey", j.sizeKey()), zap.Error(err))
		return 0, err
	}
	if len(kvs) == 0 {
		return 0, ErrSizeNotFound
	}
	n, err := strconv.ParseInt(kvs[0].value, 10, 0)
	if err != nil || n <= 0 {
		return 0, ErrBadSizeKey
	}
	return int(n), nil
}

func (j *v3join) members(ctx context.Context) (*memberList, int64, error) {
	rctx, cancel := context.WithTimeout(ctx, j.timeout)
	kvs, rev, err := j.reg.get(rctx, j.membersKey(), true)
	cancel()
	if err != nil {
		j.lg.Warn("failed to get cluster members from discovery service", zap.String("membersKeyPrefix", j.membersKey()), zap.Error(err))
		return nil, 0, err
	}
	ms := &memberList{prefix: j.membersKey()}
	for _, kv := range kvs {
		j.add(ms, kv)
	}
	return ms, rev, nil
}

func (j *v3join) add(ms *memberList, kv regMember) {
	key, val := strings.TrimSpace(kv.key), strings.TrimSpace(kv.value)
	if err := ms.add(key, val, kv.rev); err != nil {
		j.lg.Warn(err.Error(), zap.String("memberKey", key), zap.String("memberInfo", val))
		return
	}
	j.lg.Info("found peer from discovery service", zap.String("memberKey", key), zap.String("memberInfo", val))
}

func (j *v3join) register(ctx context.Context, self string) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, j.timeout)
		err := j.reg.put(rctx, j.selfKey(), self)
		cancel()
		if err == nil {
			j.retry.reset()
			j.lg.Info("register member itself successfully", zap.String("memberKey", j.selfKey()), zap.String("memberInfo", self))
			return nil
		}
		j.lg.Warn("failed to register members itself to the discovery service", zap.String("memberKey", j.selfKey()), zap.Error(err))
		if werr := j.retry.wait(ctx, "register member itself"); werr != nil {
			return werr
		}
	}
}

// waitPeers adds registrations made after rev until size are known
// (true) or the watch ends (false).
func (j *v3join) waitPeers(ctx context.Context, ms *memberList, size int, rev int64) bool {
	j.lg.Info("waiting for peers from discovery service", zap.Int("clusterSize", size), zap.Int("found-peers", ms.len()))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for evs := range j.reg.watch(wctx, j.membersKey(), rev+1) {
		for _, kv := range evs {
			j.add(ms, kv)
		}
		if ms.len() >= size {
			j.lg.Info("found all needed peers from discovery service", zap.Int("clusterSize", size), zap.Int("found-peers", ms.len()))
			return true
		}
	}
	return false
}

// memberList is the registrations of a token, ordered by create revision
// (v3) or created index (v2).
type memberList struct {
	prefix string
	ms     []regMember
}

func (l *memberList) len() int { return len(l.ms) }

func (l *memberList) add(key, val string, rev int64) error {
	switch {
	case !strings.HasPrefix(key, l.prefix):
		return errors.New("invalid peer registry key")
	case !strings.ContainsRune(val, '='):
		return errors.New("invalid peer info returned from discovery service")
	case slices.ContainsFunc(l.ms, func(m regMember) bool { return m.key == key }):
		return errors.New("found duplicate peer from discovery service")
	}
	l.ms = append(l.ms, regMember{key: key, value: val, rev: rev})
	slices.SortStableFunc(l.ms, func(a, b regMember) int { return cmp.Compare(a.rev, b.rev) })
	return nil
}

// within reports whether key is among the first size registrations.
func (l *memberList) within(key string, size int) bool {
	for i, m := range l.ms {
		if i >= size {
			return false
		}
		if m.key == key {
			return true
		}
	}
	return len(l.ms) < size
}

// initialCluster joins the first size registrations into an initial
// cluster string. It must parse (else invalid) and name size members:
// etcd's v3 discovery does not check the names, and then panics when a
// name was registered twice; cairn refuses it as v2 discovery does.
func (l *memberList) initialCluster(size int, invalid error) (string, error) {
	vals := make([]string, 0, size)
	for _, m := range l.ms[:min(size, len(l.ms))] {
		vals = append(vals, m.value)
	}
	s := strings.Join(vals, ",")
	um, err := types.NewURLsMap(s)
	if err != nil {
		return s, invalid
	}
	if um.Len() != len(vals) {
		return s, ErrDuplicateName
	}
	return s, nil
}

// clientRegistry is registry over clientv3.
type clientRegistry struct{ c *clientv3.Client }

func (r clientRegistry) get(ctx context.Context, key string, prefix bool) ([]regMember, int64, error) {
	var opts []clientv3.OpOption
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	resp, err := r.c.Get(ctx, key, opts...)
	if err != nil {
		return nil, 0, err
	}
	out := make([]regMember, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out[i] = regMember{key: string(kv.Key), value: string(kv.Value), rev: kv.CreateRevision}
	}
	return out, resp.Header.Revision, nil
}

func (r clientRegistry) put(ctx context.Context, key, val string) error {
	_, err := r.c.Put(ctx, key, val)
	return err
}

func (r clientRegistry) watch(ctx context.Context, prefix string, rev int64) <-chan []regMember {
	out := make(chan []regMember)
	wc := r.c.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
	go func() {
		defer close(out)
		for wr := range wc {
			evs := make([]regMember, len(wr.Events))
			for i, ev := range wr.Events {
				evs[i] = regMember{key: string(ev.Kv.Key), value: string(ev.Kv.Value), rev: ev.Kv.CreateRevision}
			}
			select {
			case out <- evs:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
