package robustness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// trafficConfig shapes the etcd-like traffic: clients pinned to members,
// one request in flight each, on a small key set, at a bounded rate.
type trafficConfig struct {
	Profile          string        // "etcd" (the default) or "kubernetes"
	CompactEvery     time.Duration // compaction in the traffic about this often (0: none)
	CompactAtDeletes bool          // always compact at the latest delete when there is one (else one time in two)
	ClientsPerMember int
	Keys             int
	RatePerClient    float64       // operations per second at most
	Timeout          time.Duration // per request
	// Weights of get, put, delete, cas (compare-and-set), put with a
	// lease, lease grant and lease revoke.
	Weights map[OpKind]int
	// Lease traffic: puts with a lease go to LeaseKeys keys of their own
	// (kl0, kl1, ...), which nothing else writes. KeptPercent of the
	// leases a client grants are kept alive (TTL KeptTTL, a keep-alive
	// every KeepAlive), the others left to expire (TTL ShortTTL).
	LeaseKeys         int
	KeptTTL, ShortTTL int64
	KeepAlive         time.Duration
	KeptPercent       int // of the leases granted, how many are kept alive
	// KeepFor, when set, stops each kept lease's keep-alives after a
	// random time up to KeepFor (at least a quarter of it), so kept leases
	// expire too (the lease-heavy profile).
	KeepFor time.Duration
	// SerializableGets sends gets as serializable reads while the checkers
	// still take them for linearizable ones: only the harness's end-to-end
	// self-test sets it, to show that stale reads are caught.
	SerializableGets bool
}

var defaultTraffic = trafficConfig{
	Profile:          "etcd",
	ClientsPerMember: 2,
	Keys:             10,
	RatePerClient:    150,
	Timeout:          2 * time.Second,
	Weights: map[OpKind]int{OpGet: 25, OpStaleGet: 5, OpSerialGet: 5, OpPut: 25, OpDelete: 8, OpCAS: 15, OpTxn: 5,
		opPutLease: 8, OpLeaseGrant: 2, OpLeaseRevoke: 2},
	LeaseKeys:   5,
	KeptTTL:     5,
	ShortTTL:    2,
	KeepAlive:   time.Second,
	KeptPercent: 50,
}

// opPutLease is a weight only: a put with one of the client's leases on a
// lease key (an OpPut with Lease set).
const opPutLease OpKind = "put-lease"

// opCASRev is an OpCAS by mod revision (Kubernetes' optimistic update, or
// create when the client last saw the key absent).
const opCASRev OpKind = "cas-rev"

// kubernetesTraffic is the Kubernetes-like profile: objects updated and
// created by mod-revision transactions, paginated lists pinned to a
// revision, few plain gets and blind writes; leases as in the default.
var kubernetesTraffic = func() trafficConfig {
	c := defaultTraffic
	c.Profile = "kubernetes"
	c.Weights = map[OpKind]int{OpGet: 7, OpSerialGet: 3, OpList: 16, OpSerialList: 4, opCASRev: 45, OpPut: 5, OpDelete: 6,
		opPutLease: 8, OpLeaseGrant: 3, OpLeaseRevoke: 3}
	return c
}()

// opLeaseDetach is a weight only: a put without a lease on a lease key,
// which moves the key off its lease.
const opLeaseDetach OpKind = "put-detach"

// opLeaseKeyDelete is a weight only: a client's delete of a lease key, sent
// as a txn with a marker put (newLeaseKeyDelete).
const opLeaseKeyDelete OpKind = "delete-lease-key"

// leaseTraffic is the lease-heavy profile: many short leases (TTL 2 or 3
// s), most keys attached to one, keep-alives every 0.5 s that stop after a
// while so kept leases expire too, revokes, lease keys moved to no lease or
// deleted by clients, and LeaseTimeToLive and LeaseLeases questions whose
// answers are checked (leasecheck_test.go).
var leaseTraffic = func() trafficConfig {
	c := defaultTraffic
	c.Profile = "lease"
	c.Weights = map[OpKind]int{OpGet: 16, OpList: 6, OpPut: 6, OpCAS: 4, OpTxn: 3,
		opPutLease: 25, opLeaseDetach: 5, opLeaseKeyDelete: 5,
		OpLeaseGrant: 10, OpLeaseRevoke: 7, OpLeaseTTL: 10, OpLeaseList: 3}
	c.LeaseKeys = 10
	c.KeptTTL, c.ShortTTL = 3, 2
	c.KeepAlive = 500 * time.Millisecond
	c.KeptPercent = 60
	c.KeepFor = 4 * time.Second
	return c
}()

// opKinds is the order pick walks the weights in.
var opKinds = []OpKind{OpGet, OpPut, OpDelete, OpCAS, opPutLease, OpLeaseGrant, OpLeaseRevoke, opCASRev, OpList,
	OpTxn, opLeaseDetach, opLeaseKeyDelete, OpLeaseTTL, OpLeaseList, OpStaleGet, OpSerialGet, OpSerialList}

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
	// lastRev is the mod revision this client last saw for each key (0:
	// absent or never seen), what its cas-rev operations compare with.
	lastRev map[string]int64
	prefix  string // makes values unique across runs sharing a data dir
	leases  *clientLeases
	granted []int64 // every lease this client was granted, for timetolive
	// seen is the highest header revision of the client's key operations
	// so far: its stale gets ask for a revision at most this.
	seen int64
	// proc, when set, is the member's current process number
	// (framework.Member.Starts), read before and after each request.
	proc func() int
}

// clientLeases are the leases a client granted and has not revoked; its
// keep-alive goroutine reads them too.
type clientLeases struct {
	mu   sync.Mutex
	live []clientLease
}

type clientLease struct {
	id        int64
	kept      bool
	keepUntil time.Time // zero: for ever
}

func (cl *clientLeases) add(l clientLease) {
	cl.mu.Lock()
	cl.live = append(cl.live, l)
	cl.mu.Unlock()
}

// pick returns a random live lease, removing it when take is set.
func (cl *clientLeases) pick(rnd *rand.Rand, take bool) (clientLease, bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if len(cl.live) == 0 {
		return clientLease{}, false
	}
	i := rnd.IntN(len(cl.live))
	l := cl.live[i]
	if take {
		cl.live = append(cl.live[:i], cl.live[i+1:]...)
	}
	return l, true
}

func (cl *clientLeases) drop(id int64) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for i, l := range cl.live {
		if l.id == id {
			cl.live = append(cl.live[:i], cl.live[i+1:]...)
			return
		}
	}
}

func (cl *clientLeases) kept() []int64 {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var out []int64
	now := time.Now()
	for _, l := range cl.live {
		if l.kept && (l.keepUntil.IsZero() || now.Before(l.keepUntil)) {
			out = append(out, l.id)
		}
	}
	return out
}

func key(i int) string { return fmt.Sprintf("k%d", i) }

func leaseKey(i int) string { return fmt.Sprintf("kl%d", i) }

// keyFor picks the key an operation of kind works on: lease keys only take
// puts with a lease (and reads), the others the rest.
func (tc *trafficClient) keyFor(kind OpKind) string {
	switch kind {
	case opPutLease, opLeaseDetach:
		return leaseKey(tc.rnd.IntN(tc.cfg.LeaseKeys))
	case OpGet, OpStaleGet, OpSerialGet:
		if n := tc.rnd.IntN(tc.cfg.Keys + tc.cfg.LeaseKeys); n >= tc.cfg.Keys {
			return leaseKey(n - tc.cfg.Keys)
		}
	case OpLeaseGrant, OpLeaseRevoke, OpTxn, opLeaseKeyDelete, OpLeaseTTL, OpLeaseList:
		return ""
	case OpList, OpSerialList:
		// Everything, the lease keys, or one decade.
		return []string{"k", "k", "kl", "k1"}[tc.rnd.IntN(4)]
	}
	return key(tc.rnd.IntN(tc.cfg.Keys))
}

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
		o := tc.do(kind, tc.keyFor(kind))
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
	for _, k := range opKinds {
		if n < tc.cfg.Weights[k] {
			return k
		}
		n -= tc.cfg.Weights[k]
	}
	return OpGet
}

// do performs one operation and records its times and outcome.
func (tc *trafficClient) do(kind OpKind, k string) *Op {
	switch kind {
	case opPutLease:
		l, ok := tc.leases.pick(tc.rnd, false)
		if !ok {
			kind = OpLeaseGrant // nothing to put with yet
			k = ""
			break
		}
		o := tc.doOp(&Op{Client: tc.id, Member: tc.member, Kind: OpPut, Key: k, Lease: l.id})
		if errors.Is(o.err, rpctypes.ErrLeaseNotFound) {
			tc.leases.drop(l.id) // it ended
		}
		return o
	case opCASRev:
		return tc.doOp(&Op{Client: tc.id, Member: tc.member, Kind: OpCAS, ByRev: true, Key: k})
	case OpTxn:
		return tc.doOp(tc.newTxn())
	case opLeaseKeyDelete:
		return tc.doOp(tc.newLeaseKeyDelete())
	case opLeaseDetach:
		return tc.doOp(&Op{Client: tc.id, Member: tc.member, Kind: OpPut, Key: k})
	case OpLeaseTTL:
		if len(tc.granted) == 0 {
			kind = OpLeaseGrant
			break
		}
		// One of the client's last leases, live or ended.
		id := tc.granted[max(0, len(tc.granted)-1-tc.rnd.IntN(8))]
		return tc.doOp(&Op{Client: tc.id, Member: tc.member, Kind: OpLeaseTTL, Lease: id})
	case OpLeaseList:
		return tc.doOp(&Op{Client: tc.id, Member: tc.member, Kind: OpLeaseList})
	case OpList, OpSerialList:
		return tc.doOp(&Op{Client: tc.id, Member: tc.member, Kind: kind, Key: k, Limit: int64(1 + tc.rnd.IntN(4))})
	case OpStaleGet:
		if tc.seen < 1 {
			kind = OpGet // no revision seen yet
			break
		}
		// A revision the client has seen, up to 50 back.
		at := tc.seen - tc.rnd.Int64N(min(50, tc.seen-1)+1)
		return tc.doOp(&Op{Client: tc.id, Member: tc.member, Kind: OpStaleGet, Key: k, AtRev: at})
	case OpLeaseRevoke:
		l, ok := tc.leases.pick(tc.rnd, true)
		if !ok {
			kind = OpLeaseGrant
			break
		}
		return tc.doOp(&Op{Client: tc.id, Member: tc.member, Kind: OpLeaseRevoke, Lease: l.id})
	}
	o := &Op{Client: tc.id, Member: tc.member, Kind: kind, Key: k}
	if kind == OpLeaseGrant {
		kept := tc.rnd.IntN(100) < tc.cfg.KeptPercent
		o.TTL = tc.cfg.ShortTTL
		if kept {
			o.TTL = tc.cfg.KeptTTL
		}
		tc.doOp(o)
		if o.Err == "" {
			l := clientLease{id: o.Lease, kept: kept}
			if kept && tc.cfg.KeepFor > 0 {
				l.keepUntil = time.Now().Add(tc.cfg.KeepFor/4 + time.Duration(tc.rnd.Int64N(int64(tc.cfg.KeepFor*3/4))))
			}
			tc.leases.add(l)
			tc.granted = append(tc.granted, o.Lease)
		}
		return o
	}
	return tc.doOp(o)
}

// doOp sends o and records its times and outcome.
func (tc *trafficClient) doOp(o *Op) *Op {
	kind, k := o.Kind, o.Key
	if kind == OpPut || kind == OpCAS {
		tc.seq++
		o.Value = fmt.Sprintf("%sc%d-%d", tc.prefix, tc.id, tc.seq)
	}
	for i := range o.Puts {
		tc.seq++
		o.Puts[i].Value = fmt.Sprintf("%sc%d-%d", tc.prefix, tc.id, tc.seq)
	}
	if kind == OpCAS && o.ByRev {
		o.ExpectRev = tc.lastRev[k]
	} else if kind == OpCAS {
		o.Expect = tc.last[k]
		if o.Expect == "" {
			o.Expect = "none"
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), tc.cfg.Timeout)
	defer cancel()
	proc := tc.procNow()
	o.Call = tc.rec.now()
	err := execute(ctx, tc.cl, o, tc.cfg.SerializableGets)
	o.Return = tc.rec.now()
	if proc == tc.procNow() {
		o.Proc = proc // the same process throughout: it answered
	}
	if err != nil {
		o.Err, o.err = err.Error(), err
		switch {
		case o.Kind == OpLeaseRevoke && errors.Is(err, rpctypes.ErrLeaseNotFound):
			o.Definite = true
		case o.IsWrite():
			o.Unknown = true
			o.Return = never
		}
		return o
	}
	if (o.IsKeyOp() || kind == OpTxn || kind == OpList || kind == OpSerialList) && o.Rev > tc.seen {
		tc.seen = o.Rev
	}
	switch {
	case kind == OpStaleGet || o.isSerializable():
		// A past (or possibly stale) state: not what the client's
		// compares should expect.
	case kind == OpTxn:
		tc.noteTxn(o)
	case kind == OpList:
		for _, kv := range o.Listed {
			tc.last[kv.Key], tc.lastRev[kv.Key] = kv.Value, kv.ModRev
		}
	case !o.IsKeyOp():
	case kind == OpPut || (kind == OpCAS && o.Succeeded):
		tc.last[k], tc.lastRev[k] = o.Value, o.Rev
	case o.Found:
		tc.last[k], tc.lastRev[k] = o.Got, o.ModRev
	default:
		delete(tc.last, k)
		delete(tc.lastRev, k)
	}
	return o
}

// procNow is the member's current process number (0: not known).
func (tc *trafficClient) procNow() int {
	if tc.proc == nil {
		return 0
	}
	return tc.proc()
}

// execute sends o's request and fills in its outcome.
func execute(ctx context.Context, cl *clientv3.Client, o *Op, serializable bool) error {
	switch o.Kind {
	case OpGet, OpStaleGet, OpSerialGet:
		var opts []clientv3.OpOption
		if (serializable && o.Kind == OpGet) || o.Kind == OpSerialGet {
			opts = append(opts, clientv3.WithSerializable())
		}
		if o.Kind == OpStaleGet {
			opts = append(opts, clientv3.WithRev(o.AtRev))
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
		var opts []clientv3.OpOption
		if o.Lease != 0 {
			opts = append(opts, clientv3.WithLease(clientv3.LeaseID(o.Lease)))
		}
		r, err := cl.Put(ctx, o.Key, o.Value, opts...)
		if err != nil {
			return err
		}
		o.Rev = r.Header.Revision
	case OpLeaseGrant:
		r, err := cl.Grant(ctx, o.TTL)
		if err != nil {
			return err
		}
		o.Rev, o.Lease, o.TTL = r.ResponseHeader.Revision, int64(r.ID), r.TTL
	case OpLeaseRevoke:
		r, err := cl.Revoke(ctx, clientv3.LeaseID(o.Lease))
		if err != nil {
			return err
		}
		o.Rev = r.Header.Revision
	case OpKeepAlive:
		r, err := cl.KeepAliveOnce(ctx, clientv3.LeaseID(o.Lease))
		if err != nil {
			return err
		}
		o.Rev, o.TTL = r.ResponseHeader.Revision, r.TTL
	case OpDelete:
		r, err := cl.Delete(ctx, o.Key)
		if err != nil {
			return err
		}
		o.Rev, o.Deleted = r.Header.Revision, r.Deleted
	case OpTxn:
		return executeTxn(ctx, cl, o)
	case OpLeaseTTL:
		r, err := cl.TimeToLive(ctx, clientv3.LeaseID(o.Lease))
		if err != nil {
			return err
		}
		o.Rev, o.TTL, o.GrantedTTL = r.ResponseHeader.Revision, r.TTL, r.GrantedTTL
	case OpLeaseList:
		r, err := cl.Leases(ctx)
		if err != nil {
			return err
		}
		o.Rev = r.ResponseHeader.Revision
		for _, l := range r.Leases {
			o.Leases = append(o.Leases, int64(l.ID))
		}
	case OpList, OpSerialList:
		end := clientv3.GetPrefixRangeEnd(o.Key)
		from := o.Key
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(o.Limit)}
			if o.Pages > 0 {
				opts = append(opts, clientv3.WithRev(o.Rev))
			}
			if o.Kind == OpSerialList {
				opts = append(opts, clientv3.WithSerializable())
			}
			r, err := cl.Get(ctx, from, opts...)
			if err != nil {
				return err
			}
			if o.Pages == 0 {
				o.Rev, o.Count = r.Header.Revision, r.Count
			}
			o.Pages++
			for _, kv := range r.Kvs {
				o.Listed = append(o.Listed, listedKV{string(kv.Key), string(kv.Value), kv.ModRevision})
			}
			if !r.More || len(r.Kvs) == 0 {
				return nil
			}
			from = string(r.Kvs[len(r.Kvs)-1].Key) + "\x00"
		}
	case OpCAS:
		cmp := clientv3.Compare(clientv3.Value(o.Key), "=", o.Expect)
		if o.ByRev {
			cmp = clientv3.Compare(clientv3.ModRevision(o.Key), "=", o.ExpectRev)
		}
		r, err := cl.Txn(ctx).
			If(cmp).
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
				rnd:     rand.New(rand.NewPCG(seed, uint64(id))),
				last:    map[string]string{},
				lastRev: map[string]int64{},
				leases:  &clientLeases{},
				proc:    m.Starts,
			}
			id++
			tr.wg.Add(2)
			go func() {
				defer tr.wg.Done()
				tc.run(tr.stop)
			}()
			go func() {
				defer tr.wg.Done()
				tc.keepAlive(tr.stop)
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

// keepAlive renews the client's kept leases, one KeepAliveOnce each every
// cfg.KeepAlive, each recorded with its call and return time (the lease
// checker bounds expiries with them). It runs beside the client's own
// requests, as a separate client would.
func (tc *trafficClient) keepAlive(stop <-chan struct{}) {
	if tc.cfg.KeepAlive <= 0 {
		return
	}
	for {
		select {
		case <-stop:
			return
		case <-time.After(tc.cfg.KeepAlive):
		}
		for _, id := range tc.leases.kept() {
			o := &Op{Client: tc.id, Member: tc.member, Kind: OpKeepAlive, Lease: id}
			ctx, cancel := context.WithTimeout(context.Background(), tc.cfg.Timeout)
			o.Call = tc.rec.now()
			err := execute(ctx, tc.cl, o, false)
			o.Return = tc.rec.now()
			cancel()
			if err != nil {
				o.Err = err.Error()
				if errors.Is(err, rpctypes.ErrLeaseNotFound) {
					tc.leases.drop(id)
				}
			}
			tc.rec.add(o)
		}
	}
}
