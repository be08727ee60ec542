package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The v2 workloads compare the system under test with etcd 3.4 started with
// --enable-v2 (Debian's etcd-server package): etcd 3.6 and 3.7 have no v2
// API, so those references do not run these workloads.
const (
	v2Clients  = 100
	v2KeySpace = 100000
	v2ProbeKey = "cairnbench-probe"
	v2GetKey   = "rangekey" // 8 B, as range-*
)

// v2Node is the part of etcd's v2 JSON answer that is checked.
type v2Answer struct {
	Action string `json:"action"`
	Node   struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"node"`
}

// v2Transport is one keep-alive connection pool shared by all clients.
func v2Transport(clients int) *http.Transport {
	return &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, IdleConnTimeout: 90 * time.Second,
		DisableCompression: true}
}

// v2Send sends one v2 request and returns the status and body.
func v2Send(ctx context.Context, hc *http.Client, method, base, key, val, query string) (int, []byte, error) {
	u := base + "/v2/keys/" + key
	if query != "" {
		u += "?" + query
	}
	var body io.Reader
	if method == http.MethodPut {
		body = strings.NewReader(url.Values{"value": {val}}.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// v2Check checks etcd's v2 answer: a status of okStatus and JSON with the
// action, "/"+key and the value wanted.
func v2Check(status int, body []byte, key, val, action string, okStatus ...int) error {
	ok := false
	for _, s := range okStatus {
		ok = ok || status == s
	}
	var a v2Answer
	jerr := json.Unmarshal(body, &a)
	switch {
	case !ok:
		return fmt.Errorf("HTTP %d %s", status, firstLineOf(string(body), 200))
	case jerr != nil:
		return fmt.Errorf("HTTP %d, not etcd's v2 JSON: %s", status, firstLineOf(string(body), 200))
	case a.Action != action || a.Node.Key != "/"+key || a.Node.Value != val:
		return fmt.Errorf("answer %q on %q with a %d B value, want %q on %q with %d B",
			a.Action, a.Node.Key, len(a.Node.Value), action, "/"+key, len(val))
	}
	return nil
}

// v2Do sends one request and checks the answer.
func v2Do(ctx context.Context, hc *http.Client, method, base, key, val, query, action string, okStatus ...int) error {
	status, body, err := v2Send(ctx, hc, method, base, key, val, query)
	if err != nil {
		return err
	}
	return v2Check(status, body, key, val, action, okStatus...)
}

func firstLineOf(s string, n int) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return tail(l, n)
}

// v2Probe sets one key through the v2 API. An answer of 404, 405 or 501
// whose body is not etcd's v2 JSON means the server has no v2 API ("not
// supported"); anything else that is not a correct v2 answer (no answer, a
// timeout, another status, wrong JSON) is a failure.
func v2Probe(ctx context.Context, base string) error {
	hc := &http.Client{Timeout: 10 * time.Second}
	status, body, err := v2Send(ctx, hc, http.MethodPut, base, v2ProbeKey, "probe", "")
	if err != nil {
		return fmt.Errorf("v2 probe: %w", err)
	}
	return classifyV2Probe(status, body)
}

func classifyV2Probe(status int, body []byte) error {
	var anyJSON map[string]any
	v2JSON := json.Unmarshal(body, &anyJSON) == nil && (anyJSON["action"] != nil || anyJSON["errorCode"] != nil)
	switch status {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		if !v2JSON {
			return notSupported("no v2 API: PUT /v2/keys/%s answered HTTP %d: %s", v2ProbeKey, status,
				firstLineOf(string(body), 100))
		}
	}
	if err := v2Check(status, body, v2ProbeKey, "probe", "set", http.StatusOK, http.StatusCreated); err != nil {
		return fmt.Errorf("v2 probe: %w", err)
	}
	return nil
}

// v2Load runs total requests over clients goroutines sharing one
// keep-alive Transport: set (PUT, 201 or 200) of keys in a key space, or
// quorum get (200) of one key; every answer is checked.
type v2Load struct {
	base       string
	clients    int
	total      int
	get        bool
	val        string
	reqTimeout time.Duration
	// distinct sets key i for request i (0 ≤ i < total) instead of
	// scattering the requests over v2KeySpace.
	distinct bool
}

func (l v2Load) run(ctx context.Context) (Measurement, error) {
	tr := v2Transport(l.clients)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var (
		next atomic.Int64
		lats latSink
		errs errTally
		wg   sync.WaitGroup
	)
	start := time.Now()
	for c := 0; c < l.clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]float64, 0, l.total/l.clients+1)
			defer func() { lats.add(local) }()
			for {
				i := next.Add(1) - 1
				if i >= int64(l.total) || ctx.Err() != nil {
					return
				}
				rctx, cancel := context.WithTimeout(ctx, l.reqTimeout)
				t := time.Now()
				var err error
				if l.get {
					err = v2Do(rctx, hc, http.MethodGet, l.base, v2GetKey, l.val, "quorum=true", "get", http.StatusOK)
				} else {
					key := fixedKey("", int(i*7919)%v2KeySpace, 8)
					if l.distinct {
						key = fixedKey("m", int(i), 8)
					}
					err = v2Do(rctx, hc, http.MethodPut, l.base, key, l.val, "", "set", http.StatusOK, http.StatusCreated)
				}
				d := time.Since(t)
				cancel()
				if err != nil {
					errs.add(errKind(err))
					continue
				}
				local = append(local, d.Seconds())
			}
		}()
	}
	wg.Wait()
	m := summarize(lats.v, errs.snapshot(), time.Since(start))
	if ctx.Err() != nil && m.Succeeded+m.Errors < l.total {
		return m, fmt.Errorf("v2 load: %w after %d of %d requests", errTimeout, m.Succeeded+m.Errors, l.total)
	}
	return m, nil
}

// errKind drops the per-request URL (net/http puts it in its errors) so
// that errors group.
func errKind(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

func v2Workload(name, desc string, total int, get bool) workload {
	return workload{
		name: name, desc: desc, server: true, v2: true, metrics: loadMetrics,
		serverArgs: []string{"--enable-v2"},
		run: func(ctx context.Context, r *runner, s *server) (runOut, error) {
			if err := v2Probe(ctx, s.url); err != nil {
				return runOut{}, err
			}
			val := strings.Repeat("v", valSize)
			if get {
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := v2Do(pctx, &http.Client{}, http.MethodPut, s.url, v2GetKey, val, "", "set",
					http.StatusOK, http.StatusCreated)
				cancel()
				if err != nil {
					return runOut{}, fmt.Errorf("preload %s: %w", v2GetKey, err)
				}
			}
			l := v2Load{base: s.url, clients: v2Clients, total: total, get: get, val: val, reqTimeout: 10 * time.Second}
			return measureLoad(s, total, func() (*Measurement, error) {
				m, err := l.run(ctx)
				return &m, err
			})
		},
	}
}

// v2MemoryWorkload: RSS after sz.V2MemKeys distinct v2 keys (8 B names,
// 256 B values) are set, and the growth per key over the RSS before the fill.
func v2MemoryWorkload(sz Sizes) workload {
	return workload{
		name: "v2-memory", server: true, v2: true, serverArgs: []string{"--enable-v2"},
		desc: fmt.Sprintf("RSS after %d distinct v2 keys (8 B names, 256 B values) are set by %d clients, and the "+
			"RSS growth per key over the RSS measured before the fill; reference: etcd 3.4 --enable-v2", sz.V2MemKeys, v2Clients),
		metrics: []metricDef{
			{"rss_mib", "RSS (VmRSS) after the fill", "MiB", false},
			{"per_key_b", "RSS growth per key", "B", false},
		},
		run: func(ctx context.Context, r *runner, s *server) (runOut, error) {
			if err := v2Probe(ctx, s.url); err != nil {
				return runOut{}, err
			}
			before, _, err := procStatus(s.pid())
			if err != nil {
				return runOut{}, err
			}
			l := v2Load{base: s.url, clients: v2Clients, total: sz.V2MemKeys, val: strings.Repeat("v", valSize),
				reqTimeout: 10 * time.Second, distinct: true}
			m, err := l.run(ctx)
			out := runOut{m: &m, expected: sz.V2MemKeys}
			if err != nil || m.Errors > 0 {
				return out, err
			}
			after, _, err := procStatus(s.pid())
			if err != nil {
				return out, err
			}
			out.values = map[string]float64{
				"rss_mib":   float64(after) / (1 << 20),
				"per_key_b": float64(after-before) / float64(sz.V2MemKeys),
			}
			return out, nil
		},
	}
}

func v2Workloads(sz Sizes) []workload {
	return []workload{
		v2Workload("v2-set-100c", fmt.Sprintf("v2 set: PUT /v2/keys/<8 B key> (100k key space) value=<256 B>, %d requests by %d clients "+
			"over keep-alive HTTP (harness generator; every answer's status and JSON checked); reference: etcd 3.4 --enable-v2",
			sz.V2Set, v2Clients), sz.V2Set, false),
		v2Workload("v2-get-q-100c", fmt.Sprintf("v2 quorum get: GET /v2/keys/%s?quorum=true (256 B value), %d requests by %d clients "+
			"over keep-alive HTTP (harness generator; every answer's status and value checked); reference: etcd 3.4 --enable-v2",
			v2GetKey, sz.V2Get, v2Clients), sz.V2Get, true),
		v2MemoryWorkload(sz),
	}
}

// v2RefVersion parses `etcd --version` output ("etcd Version: 3.4.23").
func v2RefVersion(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "etcd Version:"); ok {
			v = strings.TrimSpace(v)
			if _, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0]); err == nil {
				return v
			}
		}
	}
	return ""
}
