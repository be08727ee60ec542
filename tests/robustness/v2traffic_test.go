package robustness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The v2 register workload: clients drive cairn's v2 HTTP API (/v2/keys)
// on a few registers — set, compare-and-swap on the value or the modified
// index, compare-and-delete, quorum gets — and watchers chain waitIndex
// long-polls on single registers. A history watcher follows every event of
// the register directory so the checkers know the v2 store's whole history
// (v2 indexes count successful writes only, so it is gapless). etcd 3.6
// does not serve v2, so this runs on cairn only.

// v2Kind is an operation of the v2 workload.
type v2Kind string

const (
	v2Get v2Kind = "qget" // GET quorum=true
	v2Set v2Kind = "set"  // PUT value
	v2CAS v2Kind = "cas"  // PUT value with prevValue, or prevIndex when ByIndex
	v2CAD v2Kind = "cad"  // DELETE with prevValue, or prevIndex when ByIndex
)

// v2Dir holds the registers.
const v2Dir = "/reg"

// v2Op is one v2 request with its call and return times and outcome.
type v2Op struct {
	ID      int
	Client  int
	Member  string
	Kind    v2Kind
	Key     string // register path, /reg/rN
	Value   string // set/cas: the unique value written
	Expect  string // cas/cad by value
	ByIndex bool
	ExpIdx  uint64 // cas/cad by index

	Call, Return time.Duration

	Err      string // "" on success
	Code     int    // the v2 error code, 0 if none (or not a v2 error)
	Unknown  bool   // a write that may or may not have happened
	Resolved string // how validation settled an unknown write
	Index    uint64 // write: the index it took effect at; get: the node's modified index
	Found    bool   // get: the key exists
	Got      string // get: the value
	Header   uint64 // X-Etcd-Index of the answer
}

func (o *v2Op) isWrite() bool { return o.Kind != v2Get }

// definite says whether an error means the request was not applied: a
// failed compare (101) or a missing key (100) come from the apply.
func definiteV2(code int) bool { return code == 100 || code == 101 }

func (o *v2Op) describe() string {
	var in string
	switch o.Kind {
	case v2Get:
		in = fmt.Sprintf("qget %s", o.Key)
	case v2Set:
		in = fmt.Sprintf("set %s=%s", o.Key, o.Value)
	case v2CAS, v2CAD:
		cond := "prevValue=" + o.Expect
		if o.ByIndex {
			cond = fmt.Sprintf("prevIndex=%d", o.ExpIdx)
		}
		if o.Kind == v2CAS {
			in = fmt.Sprintf("cas %s=%s if %s", o.Key, o.Value, cond)
		} else {
			in = fmt.Sprintf("cad %s if %s", o.Key, cond)
		}
	}
	var out string
	switch {
	case o.Unknown:
		out = "unknown (" + o.Err + ")"
		if o.Resolved != "" {
			out += ", " + o.Resolved
		}
	case o.Err != "":
		out = "error " + o.Err
	case o.Kind == v2Get && !o.Found:
		out = "absent"
	case o.Kind == v2Get:
		out = fmt.Sprintf("%s@%d", o.Got, o.Index)
	default:
		out = fmt.Sprintf("ok@%d", o.Index)
	}
	return in + " → " + out
}

func (o *v2Op) String() string {
	ret := "never"
	if o.Return != never {
		ret = fmt.Sprintf("%.3f", o.Return.Seconds())
	}
	return fmt.Sprintf("#%d %.3f %s c%d@%s %s", o.ID, o.Call.Seconds(), ret, o.Client, o.Member, o.describe())
}

// v2Node and v2Resp are the parts of a v2 answer the checkers use.
type v2Node struct {
	Key           string  `json:"key"`
	Value         *string `json:"value"`
	ModifiedIndex uint64  `json:"modifiedIndex"`
	CreatedIndex  uint64  `json:"createdIndex"`
	Dir           bool    `json:"dir"`
	Nodes         []*v2Node
}

type v2Resp struct {
	Action    string  `json:"action"`
	Node      *v2Node `json:"node"`
	PrevNode  *v2Node `json:"prevNode"`
	ErrorCode int     `json:"errorCode"`
	Message   string  `json:"message"`
	Cause     string  `json:"cause"`
	Index     uint64  `json:"index"`
	header    uint64
	status    int
}

// v2Event is one event of the v2 store as a watcher received it.
type v2Event struct {
	Index  uint64 // the node's modified index
	Key    string
	Action string
	Value  string // set/cas: the node's value
	Prev   string // the previous value, if any
	At     time.Duration
}

func eventOf(r *v2Resp, at time.Duration) v2Event {
	ev := v2Event{Action: r.Action, At: at}
	if r.Node != nil {
		ev.Index, ev.Key = r.Node.ModifiedIndex, r.Node.Key
		if r.Node.Value != nil {
			ev.Value = *r.Node.Value
		}
	}
	if r.PrevNode != nil && r.PrevNode.Value != nil {
		ev.Prev = *r.PrevNode.Value
	}
	return ev
}

// v2Call sends one request to base (a member's client URL) and decodes
// the answer. An error is a transport failure or an undecodable body.
func v2Call(ctx context.Context, hc *http.Client, method, base, path string, form url.Values) (*v2Resp, error) {
	u := base + "/v2/keys" + path
	var body io.Reader
	if method == http.MethodPut {
		body = strings.NewReader(form.Encode())
	} else if len(form) > 0 {
		u += "?" + form.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &v2Resp{status: resp.StatusCode}
	r.header, _ = strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
	if len(strings.TrimSpace(string(data))) == 0 {
		return r, nil // a watch the server dropped: watch again
	}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("status %d: %w: %.200s", resp.StatusCode, err, data)
	}
	return r, nil
}

// v2Config shapes the workload.
type v2Config struct {
	ClientsPerMember  int
	WatchersPerMember int
	Keys              int
	RatePerClient     float64
	Timeout           time.Duration
	Weights           map[v2Kind]int // get, set, cas, cad
}

var defaultV2 = v2Config{
	ClientsPerMember:  2,
	WatchersPerMember: 1,
	Keys:              4,
	RatePerClient:     60,
	Timeout:           time.Second,
	Weights:           map[v2Kind]int{v2Get: 35, v2Set: 20, v2CAS: 35, v2CAD: 10},
}

var v2Kinds = []v2Kind{v2Get, v2Set, v2CAS, v2CAD}

func v2Key(i int) string { return fmt.Sprintf("%s/r%d", v2Dir, i) }

// v2Recorder collects the operations of every v2 client.
type v2Recorder struct {
	rec *recorder // the run's clock and success counter
	mu  sync.Mutex
	ops []*v2Op
}

func (r *v2Recorder) add(o *v2Op) {
	r.mu.Lock()
	o.ID = len(r.ops)
	r.ops = append(r.ops, o)
	r.mu.Unlock()
	if o.Err == "" {
		r.rec.okOps.Add(1)
	}
}

func (r *v2Recorder) history() []*v2Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*v2Op(nil), r.ops...)
}

// v2Client issues one request at a time to one member and remembers the
// last value and index it saw per register (its compares use them).
type v2Client struct {
	id     int
	member string
	base   string
	hc     *http.Client
	cfg    v2Config
	rec    *v2Recorder
	rnd    *rand.Rand
	seq    int
	last   map[string]string
	idx    map[string]uint64
}

func (vc *v2Client) run(stop <-chan struct{}) {
	interval := time.Duration(float64(time.Second) / vc.cfg.RatePerClient)
	total := 0
	for _, w := range vc.cfg.Weights {
		total += w
	}
	next := time.Now()
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Until(next)):
		}
		next = next.Add(interval)
		if time.Until(next) < -time.Second {
			next = time.Now()
		}
		n, kind := vc.rnd.IntN(total), v2Get
		for _, k := range v2Kinds {
			if n < vc.cfg.Weights[k] {
				kind = k
				break
			}
			n -= vc.cfg.Weights[k]
		}
		o := vc.do(kind, v2Key(vc.rnd.IntN(vc.cfg.Keys)))
		vc.rec.add(o)
		if o.Err != "" && o.Code != 100 && o.Code != 101 {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(50+vc.rnd.IntN(100)) * time.Millisecond):
			}
		}
	}
}

// do sends one operation and records its outcome.
func (vc *v2Client) do(kind v2Kind, k string) *v2Op {
	o := &v2Op{Client: vc.id, Member: vc.member, Kind: kind, Key: k}
	form := url.Values{}
	method := http.MethodPut
	switch kind {
	case v2Get:
		method = http.MethodGet
		form.Set("quorum", "true")
	case v2Set, v2CAS:
		vc.seq++
		o.Value = fmt.Sprintf("v%d-%d", vc.id, vc.seq)
		form.Set("value", o.Value)
	case v2CAD:
		method = http.MethodDelete
	}
	if kind == v2CAS || kind == v2CAD {
		// By index one time in three, when this client knows one.
		if idx := vc.idx[k]; idx > 0 && vc.rnd.IntN(3) == 0 {
			o.ByIndex, o.ExpIdx = true, idx
			form.Set("prevIndex", strconv.FormatUint(idx, 10))
		} else {
			o.Expect = vc.last[k]
			if o.Expect == "" {
				o.Expect = "none" // never written: the compare fails
			}
			form.Set("prevValue", o.Expect)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), vc.cfg.Timeout)
	defer cancel()
	o.Call = vc.rec.rec.now()
	r, err := v2Call(ctx, vc.hc, method, vc.base, k, form)
	o.Return = vc.rec.rec.now()
	switch {
	case err != nil:
		o.Err = err.Error()
	case r.ErrorCode != 0:
		o.Code = r.ErrorCode
		o.Err = fmt.Sprintf("%d %s (%s)", r.ErrorCode, r.Message, r.Cause)
		o.Header = r.Index
	case r.Node == nil:
		o.Err = fmt.Sprintf("status %d without a node", r.status)
	}
	o.Header = max(o.Header, r2header(r))
	if o.Err != "" {
		if kind == v2Get && o.Code == 100 {
			o.Err, o.Code = "", 0 // absent
			delete(vc.last, k)
			delete(vc.idx, k)
			return o
		}
		if o.isWrite() && !definiteV2(o.Code) {
			o.Unknown = true
			o.Return = never
		}
		if o.Code == 100 {
			delete(vc.last, k)
			delete(vc.idx, k)
		}
		return o
	}
	o.Index = r.Node.ModifiedIndex
	switch kind {
	case v2Get:
		o.Found = true
		if r.Node.Value != nil {
			o.Got = *r.Node.Value
		}
		vc.last[k], vc.idx[k] = o.Got, o.Index
	case v2Set, v2CAS:
		vc.last[k], vc.idx[k] = o.Value, o.Index
	case v2CAD:
		delete(vc.last, k)
		delete(vc.idx, k)
	}
	return o
}

func r2header(r *v2Resp) uint64 {
	if r == nil {
		return 0
	}
	return r.header
}

// v2Watcher chains waitIndex long-polls on one register, pinned to one
// member: from index 1, then each time from the last event's index + 1,
// and now and then from an index in the past (already in the history) or
// beyond the store's index (it waits).
type v2Watcher struct {
	id     int
	member string
	base   string
	key    string
	hc     *http.Client
	rnd    *rand.Rand
	clock  *recorder
	polls  []v2Poll
	errors int
}

// v2Poll is one long-poll: the index waited from and the event returned.
type v2Poll struct {
	From  uint64
	Call  time.Duration
	Event v2Event
}

func (w *v2Watcher) String() string {
	return fmt.Sprintf("v2 watcher %d on %s@%s", w.id, w.key, w.member)
}

func (w *v2Watcher) run(stop <-chan struct{}, until func() uint64) {
	from := uint64(1)
	var last uint64
	for {
		select {
		case <-stop:
			return
		default:
		}
		if u := until(); u > 0 && last >= u {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-stop:
			case <-time.After(3 * time.Second):
			}
			cancel()
		}()
		call := w.clock.now()
		r, err := v2Call(ctx, w.hc, http.MethodGet, w.base, w.key, url.Values{"wait": {"true"}, "waitIndex": {strconv.FormatUint(from, 10)}})
		cancel()
		switch {
		case err != nil || r.status >= 500:
			// Timed out with nothing, or the member is down: wait again
			// from the same index.
			w.errors++
			if !errors.Is(err, context.Canceled) {
				time.Sleep(100 * time.Millisecond)
			}
			continue
		case r.ErrorCode == 401:
			// Outdated: the history no longer holds from; go on from
			// the store's index.
			w.errors++
			from = r.Index + 1
			continue
		case r.ErrorCode != 0:
			w.errors++
			time.Sleep(100 * time.Millisecond)
			continue
		case r.Node == nil:
			continue // dropped by the server (a snapshot replaced the tree)
		}
		ev := eventOf(r, w.clock.now())
		w.polls = append(w.polls, v2Poll{From: from, Call: call, Event: ev})
		last = max(last, ev.Index)
		from = ev.Index + 1
		switch n := w.rnd.IntN(10); {
		case n == 0 && ev.Index > 20:
			from = ev.Index - uint64(w.rnd.IntN(20)) // from the past
		case n == 1:
			from = ev.Index + 1 + uint64(w.rnd.IntN(5)) // beyond the next
		}
	}
}

// v2HistoryWatcher follows every event under v2Dir with recursive
// long-polls from index 1, moving to the next member when one fails, so
// the checkers know the v2 store's whole history.
type v2HistoryWatcher struct {
	bases  []string
	hc     *http.Client
	clock  *recorder
	events map[uint64]v2Event
	next   uint64
	lost   string // why the history is incomplete, if it is
}

func (h *v2HistoryWatcher) run(stop <-chan struct{}, until func() uint64) {
	h.next = 1
	m := 0
	for {
		select {
		case <-stop:
			return
		default:
		}
		if u := until(); u > 0 && h.next > u {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-stop:
			case <-time.After(2 * time.Second):
			}
			cancel()
		}()
		r, err := v2Call(ctx, h.hc, http.MethodGet, h.bases[m%len(h.bases)], v2Dir,
			url.Values{"wait": {"true"}, "recursive": {"true"}, "waitIndex": {strconv.FormatUint(h.next, 10)}})
		cancel()
		switch {
		case err != nil || r.status >= 500 || (r.ErrorCode != 0 && r.ErrorCode != 401):
			m++ // try another member
			if err == nil || !errors.Is(err, context.Canceled) {
				time.Sleep(50 * time.Millisecond)
			}
			continue
		case r.ErrorCode == 401:
			h.lost = fmt.Sprintf("index %d left the history (store at %d)", h.next, r.Index)
			return
		case r.Node == nil:
			continue
		}
		ev := eventOf(r, h.clock.now())
		if _, ok := h.events[ev.Index]; !ok {
			h.events[ev.Index] = ev
		}
		h.next = ev.Index + 1
	}
}
