package harness

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// txnLoad is the harness's own generator for optimistic compare-and-put
// transactions (etcd's benchmark txn-put has no compare): each client owns a
// few keys and updates one with
//
//	If(mod_revision(k) == last seen).Then(Put(k, v)).Else(Get(k))
//
// the way Kubernetes' apiserver updates objects. A failed compare is counted
// as an error (it cannot happen unless the server loses a write). At most
// total requests; clients stop at ctx's deadline; each request has its own
// timeout.
type txnLoad struct {
	endpoint   string
	clients    int
	conns      int
	total      int
	keysPer    int
	valSize    int
	reqTimeout time.Duration
}

func (l txnLoad) run(ctx context.Context) (Measurement, error) {
	conns := make([]*clientv3.Client, l.conns)
	for i := range conns {
		c, err := newClient(l.endpoint)
		if err != nil {
			return Measurement{}, err
		}
		defer c.Close()
		conns[i] = c
	}
	val := strings.Repeat("v", l.valSize)
	var (
		next     atomic.Int64
		mu       sync.Mutex
		lats     = make([]float64, 0, l.total)
		errKinds = map[string]int{}
		wg       sync.WaitGroup
	)
	start := time.Now()
	for c := 0; c < l.clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			cli := conns[c%len(conns)]
			keys := make([]string, l.keysPer)
			revs := make([]int64, l.keysPer)
			for j := range keys {
				keys[j] = fmt.Sprintf("t%03x%04x", c%4096, j%65536) // 8 bytes
			}
			local := make([]float64, 0, l.total/l.clients+1)
			localErr := map[string]int{}
			for i := 0; ; i++ {
				if next.Add(1) > int64(l.total) || ctx.Err() != nil {
					break
				}
				j := i % l.keysPer
				k := keys[j]
				if _, d, fail := optimisticUpdate(ctx, cli, l.reqTimeout, k, val, &revs[j]); fail != "" {
					localErr[fail]++
				} else {
					local = append(local, d.Seconds())
				}
			}
			mu.Lock()
			lats = append(lats, local...)
			for k, n := range localErr {
				errKinds[k] += n
			}
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	m := summarize(lats, errKinds, elapsed)
	if ctx.Err() != nil && m.Succeeded+m.Errors < l.total {
		return m, fmt.Errorf("txn load: %w after %d of %d requests", errTimeout, m.Succeeded+m.Errors, l.total)
	}
	return m, nil
}

// optimisticUpdate is the apiserver's update: put k=val if its mod revision
// is still *rev, else read it. On success *rev becomes the new revision and
// sent is when the request went out; on a failed compare *rev is refreshed
// from the read. fail is "" on success, else what went wrong.
func optimisticUpdate(ctx context.Context, cli *clientv3.Client, timeout time.Duration, k, val string, rev *int64) (sent time.Time, d time.Duration, fail string) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sent = time.Now()
	resp, err := cli.Txn(rctx).
		If(clientv3.Compare(clientv3.ModRevision(k), "=", *rev)).
		Then(clientv3.OpPut(k, val)).
		Else(clientv3.OpGet(k)).
		Commit()
	d = time.Since(sent)
	switch {
	case err != nil:
		return sent, d, err.Error()
	case !resp.Succeeded:
		if rr := resp.Responses[0].GetResponseRange(); rr != nil && len(rr.Kvs) == 1 {
			*rev = rr.Kvs[0].ModRevision
		}
		return sent, d, "compare failed (lost or foreign write)"
	}
	*rev = resp.Header.Revision
	return sent, d, ""
}
