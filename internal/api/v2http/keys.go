// Package v2http serves etcd's v2 API on the client port: /v2/keys
// (request parsing with etcd's parameters and error codes, method →
// operation mapping, headers and JSON bodies, watches; spec D.1-D.7),
// /v2/members, /v2/machines and /v2/stats (D.8, D.9).
package v2http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/v2store"
)

// Server is what the v2 API needs of a member.
type Server interface {
	V2Store() *v2store.Store
	// V2Write proposes a write; the error is a *v2store.Error for a v2
	// failure.
	V2Write(ctx context.Context, r *v2store.Request) (*v2store.Event, error)
	LinearizableReadNotify(ctx context.Context) error
	ClusterID() uint64
	CommittedIndex() uint64
	Term() uint64
	ClusterServer
}

const keysPrefix = "/v2/keys"

// Wrap serves /v2/keys, /v2/members, /v2/machines and /v2/stats/* from s
// and everything else from next.
func Wrap(next http.Handler, s Server, lg *zap.Logger, timeout time.Duration) http.Handler {
	k := &keys{s: s, lg: lg, timeout: timeout}
	mux := http.NewServeMux()
	mux.Handle(keysPrefix, k)
	mux.Handle(keysPrefix+"/", k)
	m := &members{s: s, lg: lg, timeout: timeout}
	mux.Handle(membersPrefix, m)
	mux.Handle(membersPrefix+"/", m)
	mux.Handle("/v2/machines", machines(s))
	st := stats(s)
	for _, p := range []string{"/v2/stats/store", "/v2/stats/self", "/v2/stats/leader"} {
		mux.Handle(p, st)
	}
	mux.Handle("/", next)
	return mux
}

type keys struct {
	s       Server
	lg      *zap.Logger
	timeout time.Duration
}

// request is a parsed keys request.
type request struct {
	method                           string
	path                             string
	value                            string
	dir, recursive, sorted, wait     bool
	quorum, stream, noValueOnSuccess bool
	prevValue                        string
	prevIndex, waitIndex             uint64
	prevExist, refresh               *bool
	expire                           int64
}

func (k *keys) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodHead, http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete:
	default:
		w.Header().Set("Allow", "HEAD,GET,PUT,POST,DELETE")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Etcd-Cluster-ID", strconv.FormatUint(k.s.ClusterID(), 16))
	rq, perr := parse(r, time.Now())
	if perr != nil {
		writeError(w, perr)
		return
	}
	if rq.wait && !rq.quorum && r.Method == http.MethodGet {
		k.watch(w, r, rq)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), k.timeout)
	defer cancel()
	ev, err := k.do(ctx, rq)
	if err != nil {
		var ve *v2store.Error
		if !errors.As(err, &ve) {
			k.lg.Warn("v2 request failed", zap.String("method", rq.method), zap.String("path", rq.path), zap.Error(err))
			ve = v2store.NewError(v2store.EcodeRaftInternal, err.Error(), 0)
		}
		writeError(w, ve)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Etcd-Index", strconv.FormatUint(ev.EtcdIndex, 10))
	h.Set("X-Raft-Index", strconv.FormatUint(k.s.CommittedIndex(), 10))
	h.Set("X-Raft-Term", strconv.FormatUint(k.s.Term(), 10))
	if ev.Created() {
		w.WriteHeader(http.StatusCreated)
	}
	out := *ev
	if rq.noValueOnSuccess {
		switch ev.Action {
		case v2store.ActionSet, v2store.ActionCreate, v2store.ActionUpdate, v2store.ActionCompareAndSwap:
			out.Node, out.PrevNode = nil, nil
		}
	}
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(&out)
}

func (k *keys) do(ctx context.Context, rq *request) (*v2store.Event, error) {
	st := k.s.V2Store()
	switch rq.method {
	case http.MethodGet, http.MethodHead:
		// wait=true with quorum=true is a quorum read, as in etcd 3.4.
		if rq.quorum {
			if err := k.s.LinearizableReadNotify(ctx); err != nil {
				return nil, err
			}
		}
		return st.Get(rq.path, rq.recursive, rq.sorted, time.Now())
	case http.MethodPost:
		return k.s.V2Write(ctx, &v2store.Request{Op: v2store.OpCreate, Unique: true, Path: rq.path, Value: rq.value, Dir: rq.dir, Expire: rq.expire})
	case http.MethodPut:
		wr := &v2store.Request{Path: rq.path, Value: rq.value, Dir: rq.dir, Expire: rq.expire,
			PrevValue: rq.prevValue, PrevIndex: rq.prevIndex, Refresh: rq.refresh != nil && *rq.refresh}
		switch {
		case rq.prevExist != nil && *rq.prevExist:
			wr.Op = v2store.OpUpdate
			if rq.prevIndex != 0 || rq.prevValue != "" {
				wr.Op = v2store.OpCAS
			}
		case rq.prevExist != nil:
			wr.Op = v2store.OpCreate
		case rq.prevIndex > 0 || rq.prevValue != "":
			wr.Op = v2store.OpCAS
		default:
			wr.Op = v2store.OpSet
		}
		return k.s.V2Write(ctx, wr)
	case http.MethodDelete:
		wr := &v2store.Request{Op: v2store.OpDelete, Path: rq.path, Dir: rq.dir, Recursive: rq.recursive,
			PrevValue: rq.prevValue, PrevIndex: rq.prevIndex}
		if rq.prevIndex > 0 || rq.prevValue != "" {
			wr.Op = v2store.OpCAD
		}
		return k.s.V2Write(ctx, wr)
	}
	return nil, fmt.Errorf("method %s", rq.method)
}

// parse reads a keys request as etcd does: form values (PUT and POST
// bodies before the query), Go booleans, base-10 unsigned integers.
func parse(r *http.Request, now time.Time) (*request, *v2store.Error) {
	bad := func(code int, cause string) *v2store.Error { return v2store.NewError(code, cause, 0) }
	if err := r.ParseForm(); err != nil {
		return nil, bad(v2store.EcodeInvalidForm, err.Error())
	}
	if !strings.HasPrefix(r.URL.Path, keysPrefix) {
		return nil, bad(v2store.EcodeInvalidForm, "incorrect key prefix")
	}
	f := r.Form
	rq := &request{method: r.Method, path: path.Join("/", r.URL.Path[len(keysPrefix):])}
	var err error
	if rq.prevIndex, err = getUint(f, "prevIndex"); err != nil {
		return nil, bad(v2store.EcodeIndexNaN, `invalid value for "prevIndex"`)
	}
	if rq.waitIndex, err = getUint(f, "waitIndex"); err != nil {
		return nil, bad(v2store.EcodeIndexNaN, `invalid value for "waitIndex"`)
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"recursive", &rq.recursive}, {"sorted", &rq.sorted}, {"wait", &rq.wait}, {"dir", &rq.dir}, {"quorum", &rq.quorum}, {"stream", &rq.stream}} {
		if *b.dst, err = getBool(f, b.name); err != nil {
			return nil, bad(v2store.EcodeInvalidField, fmt.Sprintf("invalid value for %q", b.name))
		}
	}
	if rq.wait && r.Method != http.MethodGet {
		return nil, bad(v2store.EcodeInvalidField, `"wait" can only be used with GET requests`)
	}
	rq.prevValue = f.Get("prevValue")
	if _, ok := f["prevValue"]; ok && rq.prevValue == "" {
		return nil, bad(v2store.EcodePrevValueReq, `"prevValue" cannot be empty`)
	}
	if rq.noValueOnSuccess, err = getBool(f, "noValueOnSuccess"); err != nil {
		return nil, bad(v2store.EcodeInvalidField, `invalid value for "noValueOnSuccess"`)
	}
	var ttl *uint64
	if f.Get("ttl") != "" {
		v, err := getUint(f, "ttl")
		if err != nil {
			return nil, bad(v2store.EcodeTTLNaN, `invalid value for "ttl"`)
		}
		ttl = &v
	}
	if _, ok := f["prevExist"]; ok {
		v, err := getBool(f, "prevExist")
		if err != nil {
			return nil, bad(v2store.EcodeInvalidField, "invalid value for prevExist")
		}
		rq.prevExist = &v
	}
	if _, ok := f["refresh"]; ok {
		v, err := getBool(f, "refresh")
		if err != nil {
			return nil, bad(v2store.EcodeInvalidField, "invalid value for refresh")
		}
		rq.refresh = &v
		if v {
			if _, ok := f["value"]; ok && f.Get("value") != "" {
				return nil, bad(v2store.EcodeRefreshValue, "A value was provided on a refresh")
			}
			if ttl == nil {
				return nil, bad(v2store.EcodeRefreshTTLReq, "No TTL value set")
			}
		}
	}
	rq.value = f.Get("value")
	if ttl != nil {
		rq.expire = now.Add(time.Duration(*ttl) * time.Second).UnixNano()
	}
	return rq, nil
}

func getUint(f map[string][]string, key string) (uint64, error) {
	if v, ok := f[key]; ok {
		return strconv.ParseUint(v[0], 10, 64)
	}
	return 0, nil
}

func getBool(f map[string][]string, key string) (bool, error) {
	if v, ok := f[key]; ok {
		return strconv.ParseBool(v[0])
	}
	return false, nil
}

// writeError answers with a v2 error: its JSON and a newline, the status
// of the table, X-Etcd-Index.
func writeError(w http.ResponseWriter, e *v2store.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Add("X-Etcd-Index", strconv.FormatUint(e.Index, 10))
	w.WriteHeader(e.StatusCode())
	w.Write(append(e.JSON(), '\n'))
}
