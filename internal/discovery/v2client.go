package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// v2 client errors, with the texts of etcd's v2 client.
var (
	errInvalidJSON = errors.New("client: response is invalid json. The endpoint is probably not valid etcd cluster endpoint")
	errEmptyBody   = errors.New("client: response body is empty")
)

// v2 error codes the protocol acts on.
const (
	v2KeyNotFound = 100
	v2NodeExist   = 105
)

// v2Error is an error answer of the v2 keys API.
type v2Error struct {
	Code    int    `json:"errorCode"`
	Message string `json:"message"`
	Cause   string `json:"cause"`
	Index   uint64 `json:"index"`
}

func (e *v2Error) Error() string {
	return fmt.Sprintf("%v: %v (%v) [%v]", e.Code, e.Message, e.Cause, e.Index)
}

// unavailableError is a failure to reach the service or a 5xx answer:
// the attempts that v2 discovery retries.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string {
	return "client: etcd cluster is unavailable or misconfigured; error #0: " + e.err.Error()
}

func (e *unavailableError) Unwrap() error { return e.err }

// v2Node is a node of a v2 keys answer.
type v2Node struct {
	Key           string    `json:"key"`
	Value         string    `json:"value"`
	Dir           bool      `json:"dir"`
	Nodes         []*v2Node `json:"nodes"`
	CreatedIndex  uint64    `json:"createdIndex"`
	ModifiedIndex uint64    `json:"modifiedIndex"`
}

// v2Response is a successful v2 keys answer; Index is X-Etcd-Index.
type v2Response struct {
	Action string  `json:"action"`
	Node   *v2Node `json:"node"`
	Index  uint64  `json:"-"`
}

// v2Client speaks the v2 keys API to one endpoint. Keys are URL paths
// below the endpoint (no /v2/keys prefix is added: the discovery URL's
// path already holds it, or the service maps it itself).
type v2Client struct {
	endpoint url.URL
	hc       *http.Client
}

func newV2Client(endpoint url.URL, proxy func(*http.Request) (*url.URL, error)) *v2Client {
	tr := &http.Transport{
		Proxy:               proxy,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &v2Client{endpoint: endpoint, hc: &http.Client{Transport: tr}}
}

func (c *v2Client) url(key string, q url.Values) string {
	u := c.endpoint
	u.Path = "/" + strings.Trim(strings.TrimSuffix(u.Path, "/")+"/"+strings.TrimPrefix(key, "/"), "/")
	u.RawQuery = q.Encode()
	return u.String()
}

func (c *v2Client) get(ctx context.Context, key string) (*v2Response, error) {
	q := url.Values{"recursive": {"false"}, "sorted": {"false"}, "quorum": {"false"}}
	return c.do(ctx, http.MethodGet, c.url(key, q), nil)
}

// create writes key only if it does not exist (prevExist=false).
func (c *v2Client) create(ctx context.Context, key, value string) (*v2Response, error) {
	q := url.Values{"prevExist": {"false"}}
	return c.do(ctx, http.MethodPut, c.url(key, q), url.Values{"value": {value}})
}

// waitNext waits for the first change of key (or below it, with
// recursive) at or after index.
func (c *v2Client) waitNext(ctx context.Context, key string, index uint64, recursive bool) (*v2Response, error) {
	q := url.Values{"wait": {"true"}, "waitIndex": {strconv.FormatUint(index, 10)}, "recursive": {strconv.FormatBool(recursive)}}
	return c.do(ctx, http.MethodGet, c.url(key, q), nil)
}

func (c *v2Client) do(ctx context.Context, method, u string, form url.Values) (*v2Response, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &unavailableError{err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &unavailableError{err}
	}
	switch {
	case resp.StatusCode == http.StatusInternalServerError || resp.StatusCode == http.StatusServiceUnavailable:
		return nil, &unavailableError{fmt.Errorf("client: etcd member %s has no leader", c.endpoint.String())}
	case resp.StatusCode/100 == 5:
		return nil, &unavailableError{fmt.Errorf("client: etcd member %s returns server error [%s]", c.endpoint.String(), http.StatusText(resp.StatusCode))}
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated:
		if len(b) == 0 {
			return nil, errEmptyBody
		}
		var r v2Response
		if err := json.Unmarshal(b, &r); err != nil || r.Node == nil {
			return nil, errInvalidJSON
		}
		if h := resp.Header.Get("X-Etcd-Index"); h != "" {
			if r.Index, err = strconv.ParseUint(h, 10, 64); err != nil {
				return nil, err
			}
		}
		return &r, nil
	}
	var e v2Error
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, errInvalidJSON
	}
	return nil, &e
}
