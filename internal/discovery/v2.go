package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// v2RequestTimeout bounds each v2 request but the waits (etcd's v2 client
// default).
const v2RequestTimeout = 5 * time.Second

// JoinV2 registers member id, whose peer URLs are self ("name=url,..."),
// with the v2 discovery service at durl (the token directory's URL) and
// waits until the directory's _config/size members registered. proxy, when
// set, is the HTTP proxy for the service (--discovery-proxy; "http://" is
// assumed when it has no http(s) scheme). It returns the initial cluster
// of the first size members by created index. Errors are *Error wrapping
// ErrFullCluster, ErrDuplicateID, ErrDuplicateName, ErrBadSizeKey,
// ErrBadDiscoveryEndpoint, ErrInvalidURL, the service's own v2 error (a
// missing size key surfaces as the service's "100: Key not found ..." as
// in etcd 3.6), or ctx's error. Failures to reach the service and 5xx
// answers are retried without limit.
func JoinV2(ctx context.Context, lg *zap.Logger, durl, proxy string, id uint64, self string) (string, error) {
	j, err := newV2Join(lg, durl, proxy, id)
	if err != nil {
		return "", &Error{Err: err}
	}
	cluster, err := j.join(ctx, self)
	if err != nil {
		return "", &Error{Err: err}
	}
	return cluster, nil
}

type v2join struct {
	lg    *zap.Logger
	c     *v2Client
	url   string // the endpoint, for logs
	dir   string // the token directory: the discovery URL's path
	id    uint64
	retry retrier
}

func newV2Join(lg *zap.Logger, durl, proxy string, id uint64) (*v2join, error) {
	u, err := url.Parse(durl)
	if err != nil {
		return nil, err
	}
	dir := u.Path
	u.Path, u.RawPath = "", ""
	pf, err := proxyFunc(lg, proxy)
	if err != nil {
		return nil, err
	}
	return &v2join{
		lg: lg, c: newV2Client(*u, pf), url: u.String(), dir: dir, id: id,
		retry: retrier{lg: lg, info: true, sleep: sleepCtx},
	}, nil
}

// proxyFunc parses --discovery-proxy as etcd does: a value that does not
// parse as an http(s) URL is tried again with "http://" in front.
func proxyFunc(lg *zap.Logger, proxy string) (func(*http.Request) (*url.URL, error), error) {
	if proxy == "" {
		return nil, nil
	}
	pu, err := url.Parse(proxy)
	if err != nil || !strings.HasPrefix(pu.Scheme, "http") {
		if pu2, err2 := url.Parse("http://" + proxy); err2 == nil {
			pu, err = pu2, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("invalid proxy address %q: %w", proxy, err)
	}
	lg.Info("running proxy with discovery", zap.String("proxy-url", pu.String()))
	return http.ProxyURL(pu), nil
}

func (j *v2join) selfKey() string { return path.Join("/", j.dir, strconv.FormatUint(j.id, 16)) }

func (j *v2join) join(ctx context.Context, self string) (string, error) {
	// A full cluster fails before registering.
	if _, _, _, err := j.check(ctx); err != nil {
		return "", err
	}
	if err := j.createSelf(ctx, self); err != nil {
		return "", err
	}
	nodes, size, index, err := j.check(ctx)
	if err != nil {
		return "", err
	}
	all, err := j.waitNodes(ctx, nodes, size, index)
	if err != nil {
		return "", err
	}
	ms := &memberList{}
	for _, n := range all {
		ms.ms = append(ms.ms, regMember{key: n.Key, value: n.Value})
	}
	return ms.initialCluster(int(size), ErrInvalidURL)
}

func (j *v2join) createSelf(ctx context.Context, self string) error {
	rctx, cancel := context.WithTimeout(ctx, v2RequestTimeout)
	resp, err := j.c.create(rctx, j.selfKey(), self)
	cancel()
	if err != nil {
		var ve *v2Error
		if errors.As(err, &ve) && ve.Code == v2NodeExist {
			return ErrDuplicateID
		}
		return err
	}
	// Make sure the registration is visible on the server answering.
	_, err = j.c.waitNext(ctx, j.selfKey(), resp.Node.CreatedIndex, false)
	return err
}

// check reads the size and the registrations (sorted by created index)
// and fails with ErrFullCluster, returning the first size of them, when
// this member is not among them.
func (j *v2join) check(ctx context.Context) ([]*v2Node, uint64, uint64, error) {
	for {
		nodes, size, index, err := j.checkOnce(ctx)
		var ue *unavailableError
		if !errors.As(err, &ue) {
			if err == nil {
				j.retry.reset()
			}
			return nodes, size, index, err
		}
		if werr := j.retry.wait(ctx, "cluster status check", zap.String("url", j.url)); werr != nil {
			return nil, 0, 0, werr
		}
	}
}

func (j *v2join) checkOnce(ctx context.Context) ([]*v2Node, uint64, uint64, error) {
	sizeKey := path.Join("/", j.dir, "_config", "size")
	rctx, cancel := context.WithTimeout(ctx, v2RequestTimeout)
	resp, err := j.c.get(rctx, sizeKey)
	cancel()
	if err != nil {
		var ue *unavailableError
		switch {
		case errors.Is(err, errInvalidJSON):
			return nil, 0, 0, ErrBadDiscoveryEndpoint
		case errors.As(err, &ue):
			j.lg.Warn("failed to get from discovery server", zap.String("discovery-url", j.url), zap.String("path", sizeKey), zap.Error(err))
		}
		return nil, 0, 0, err
	}
	size, err := strconv.ParseUint(resp.Node.Value, 10, 0)
	if err != nil {
		return nil, 0, 0, ErrBadSizeKey
	}
	rctx, cancel = context.WithTimeout(ctx, v2RequestTimeout)
	resp, err = j.c.get(rctx, j.dir)
	cancel()
	if err != nil {
		var ue *unavailableError
		if errors.As(err, &ue) {
			j.lg.Warn("failed to get from discovery server", zap.String("discovery-url", j.url), zap.String("path", j.dir), zap.Error(err))
		}
		return nil, 0, 0, err
	}
	var nodes []*v2Node
	for _, n := range resp.Node.Nodes {
		if path.Base(n.Key) != "_config" {
			nodes = append(nodes, n)
		}
	}
	slices.SortStableFunc(nodes, func(a, b *v2Node) int { return cmpUint(a.CreatedIndex, b.CreatedIndex) })
	self := path.Base(j.selfKey())
	for i, n := range nodes {
		if path.Base(n.Key) == self {
			break
		}
		if uint64(i) >= size-1 {
			return nodes[:size], size, resp.Index, ErrFullCluster
		}
	}
	return nodes, size, resp.Index, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// waitNodes watches the token directory after index until size members
// are known, re-reading it after a pause when the service fails.
func (j *v2join) waitNodes(ctx context.Context, nodes []*v2Node, size, index uint64) ([]*v2Node, error) {
	for {
		all, err := j.waitNodesOnce(ctx, nodes, size, index)
		var ue *unavailableError
		if !errors.As(err, &ue) {
			return all, err
		}
		j.lg.Warn("error while waiting for peers", zap.String("discovery-url", j.url), zap.Error(err))
		if werr := j.retry.wait(ctx, "waiting for other nodes", zap.String("url", j.url)); werr != nil {
			return nil, werr
		}
		if nodes, size, index, err = j.check(ctx); err != nil {
			return nil, err
		}
	}
}

func (j *v2join) waitNodesOnce(ctx context.Context, nodes []*v2Node, size, index uint64) ([]*v2Node, error) {
	if uint64(len(nodes)) > size {
		nodes = nodes[:size]
	}
	all := slices.Clone(nodes)
	self := path.Base(j.selfKey())
	for _, n := range all {
		if path.Base(n.Key) == self {
			j.lg.Info("found self from discovery server", zap.String("discovery-url", j.url), zap.String("self", self))
		} else {
			j.lg.Info("found peer from discovery server", zap.String("discovery-url", j.url), zap.String("peer", path.Base(n.Key)))
		}
	}
	next := index + 1
	for uint64(len(all)) < size {
		j.lg.Info("found peers from discovery server; waiting for more", zap.String("discovery-url", j.url),
			zap.Int("found-peers", len(all)), zap.Int("needed-peers", int(size-uint64(len(all)))))
		resp, err := j.c.waitNext(ctx, j.dir, next, true)
		if err != nil {
			return nil, err
		}
		next = resp.Node.ModifiedIndex + 1
		j.lg.Info("found peer from discovery server", zap.String("discovery-url", j.url), zap.String("peer", path.Base(resp.Node.Key)))
		all = append(all, resp.Node)
	}
	j.lg.Info("found all needed peers from discovery server", zap.String("discovery-url", j.url), zap.Int("found-peers", len(all)))
	return all, nil
}
