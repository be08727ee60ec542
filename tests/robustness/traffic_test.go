package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// trafficConfig shapes the etcd-like traffic: clients pinned to members,
// one request in flight each, on a small key set, at a bounded rate.
type trafficConfig struct {
	ClientsPerMember int
	Keys             int
	RatePerClient    float64       // operations per second at most
	Timeout          time.Duration // per request
	// Weights of get, put, delete and cas (compare-and-set).
	Weights map[OpKind]int
	// SerializableGets sends gets as serializable reads while the checkers
	// still take them for linearizable ones: only the harness's end-to-end
	// self-test sets it, to show that stale reads are caught.
	SerializableGets bool
}

var defaultTraffic = trafficConfig{
	ClientsPerMember: 2,
	Keys:             10,
	RatePerClient:    150,
	Timeout:          2 * time.Second,
	Weights:          map[OpKind]int{OpGet: 40, OpPut: 30, OpDelete: 10, OpCAS: 20},
}

// recorder collects operations from every client.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []*Op
	okOps atomic.Int64 // successful ops so far
}

func (r *recorder) now() time.Duration { return time.Since(r.start) }

func (r *recorder) add(o *Op) {
	r.mu.Lock()
	o.ID = len(r.ops)
	r.ops = append(r.ops, o)
	r.mu.Unlock()
	if o.Err == "" {
		r.okOps.Add(1)
	}
}

func (r *recorder) history() []*Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Op(nil), r.ops...)
}

// trafficClient issues one request at a time through a client pinned to
// one member and remembers the last value it saw per key (its CAS expects
// it).
type trafficClient struct {
	id     int
	member string
	cl     *clientv3.Client
	cfg    trafficConfig
	rec    *recorder
	rnd    *rand.Rand
	seq    int
	last   map[string]string
	prefix string // makes values unique across runs sharing a data dir
}

func key(i int) string { return fmt.Sprintf("k%d", i) }

// run issues operations until stop is closed.
func (tc *trafficClient) run(stop <-chan struct{}) {
	interval := time.Duration(float64(time.Second) / tc.cfg.RatePerClient)
	next := time.Now()
	total := 0
	for _, w := range tc.cfg.Weights {
		total += w
	}
	for {
		select {
		case <-stop:
			return
		default:
		}
		if d := time.Until(next); d > 0 {
			select {
			case <-stop:
				return
			case <-time.After(d):
			}
		}
		next = next.Add(interval)
		if time.Until(next) < -time.Second {
			next = time.Now() // do not burst after a stall
		}
		kind := tc.pick(total)
		o := tc.do(kind, key(tc.rnd.IntN(tc.cfg.Keys)))
		tc.rec.add(o)
		if o.Err != "" {
			// Back off after an error so a dead member does not turn
			// into thousands of failed requests.
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(50+tc.rnd.IntN(100)) * time.Millisecond):
			}
		}
	}
}

func (tc *trafficClient) pick(total int) OpKind {
	n := tc.rnd.IntN(total)
	for _, k := range []OpKind{OpGet, OpPut, OpDelete, OpCAS} {
		if n < tc.cfg.Weights[k] {
			return k
		}
		n -= tc.cfg.Weights[k]
	}
	return OpGet
}

// do performs one operation and records its times and outcome.
func (tc *trafficClient) do(kind OpKind, k string) *Op {
	o := &Op{Client: tc.id, Member: tc.member, Kind: kind, Key: k}
	if kind == OpPut || kind == OpCAS {
		tc.seq++
		o.Value = fmt.Sprintf("%sc%d-%d", tc.prefix, tc.id, tc.seq)
	}
	if kind == OpCAS {
		o.Expect = tc.last[k]
		if o.Expect == "" {
			o.Expect = "none"
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), tc.cfg.Timeout)
	defer cancel()
	o.Call = tc.rec.now()
	err := execute(ctx, tc.cl, o, tc.cfg.SerializableGets)
	o.Return = tc.rec.now()
	if err != nil {
		o.Err = err.Error()
		if o.IsWrite() {
			o.Unknown = true
			o.Return = never
		}
		return o
	}
	switch {
	case kind == OpPut || (kind == OpCAS && o.Succeeded):
		tc.last[k] = o.Value
	case o.Found:
		tc.last[k] = o.Got
	default:
		delete(tc.last, k)
	}
	return o
}

// execute sends o's request and fills in its outcome.
func execute(ctx context.Context, cl *clientv3.Client, o *Op, serializable bool) error {
	switch o.Kind {
	case OpGet:
		var opts []clientv3.OpOption
		if serializable {
			opts = append(opts, clientv3.WithSerializable())
		}
		r, err := cl.Get(ctx, o.Key, opts...)
		if err != nil {
			return err
		}
		o.Rev = r.Header.Revision
		if len(r.Kvs) > 0 {
			o.Found, o.Got, o.ModRev = true, string(r.Kvs[0].Value), r.Kvs[0].ModRevision
		}
	case OpPut:
		r, err := cl.Put(ctx, o.Key, o.Value)
		if err != nil {
			return err
		}
		o.Rev = r.Header.Revision
	case OpDelete:
		r, err := cl.Delete(ctx, o.Key)
		if err != nil {
			return err
		}
		o.Rev, o.Deleted = r.Header.Revision, r.Deleted
	case OpCAS:
		r, err := cl.Txn(ctx).
			If(clientv3.Compare(clientv3.Value(o.Key), "=", o.Expect)).
			Then(clientv3.OpPut(o.Key, o.Value)).
			Else(clientv3.OpGet(o.Key)).
			Commit()
		if err != nil {
			return err
		}
		o.Rev, o.Succeeded = r.Header.Revision, r.Succeeded
		if !r.Succeeded && len(r.Responses) == 1 {
			if rr := r.Responses[0].GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
				o.Found, o.Got, o.ModRev = true, string(rr.Kvs[0].Value), rr.Kvs[0].ModRevision
			}
		}
	}
	return nil
}

// traffic runs the clients of a run.
type traffic struct {
	rec     *recorder
	stop    chan struct{}
	wg      sync.WaitGroup
	clients []*clientv3.Client
}

// startTraffic starts cfg.ClientsPerMember clients on each member.
func startTraffic(c *cluster, cfg trafficConfig, rec *recorder, seed uint64) *traffic {
	tr := &traffic{rec: rec, stop: make(chan struct{})}
	id := 0
	for range cfg.ClientsPerMember {
		for _, m := range c.members {
			cl := c.client(m)
			tr.clients = append(tr.clients, cl)
			tc := &trafficClient{
				id: id, member: m.Name, cl: cl, cfg: cfg, rec: rec,
				rnd:  rand.New(rand.NewPCG(seed, uint64(id))),
				last: map[string]string{},
			}
			id++
			tr.wg.Add(1)
			go func() {
				defer tr.wg.Done()
				tc.run(tr.stop)
			}()
		}
	}
	return tr
}

// finish stops the clients, waits for their last requests and closes them.
func (tr *traffic) finish() {
	close(tr.stop)
	tr.wg.Wait()
	for _, cl := range tr.clients {
		cl.Close()
	}
}
