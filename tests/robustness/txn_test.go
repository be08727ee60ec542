package robustness

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Multi-op transactions: several compares, several writes and several
// reads on several keys in one Txn, checked as one step of the
// whole-keyspace model (ksmodel_test.go).

// txnCmp is one compare of a txn: the key's mod revision equals ModRev (0:
// the key is absent), or, without ByRev, its value equals Value (false on
// a missing key, as etcd compares values).
type txnCmp struct {
	Key    string
	ByRev  bool
	ModRev int64
	Value  string
}

// txnPut is one put of a txn's then branch.
type txnPut struct{ Key, Value string }

// txnRead is what one get of a txn's else branch read.
type txnRead struct {
	Found  bool
	Value  string
	ModRev int64
}

func (c txnCmp) String() string {
	if c.ByRev {
		return fmt.Sprintf("mod(%s)=%d", c.Key, c.ModRev)
	}
	return fmt.Sprintf("value(%s)=%s", c.Key, c.Value)
}

// describeTxn is the request.
func (o *Op) describeTxn() string {
	var parts []string
	for _, c := range o.Cmps {
		parts = append(parts, c.String())
	}
	var then []string
	for _, p := range o.Puts {
		then = append(then, fmt.Sprintf("put %s=%s", p.Key, p.Value))
	}
	for _, d := range o.Dels {
		then = append(then, "delete "+d)
	}
	var els []string
	for _, r := range o.Reads {
		els = append(els, "get "+r)
	}
	return fmt.Sprintf("txn if(%s) then(%s) else(%s)", strings.Join(parts, ", "), strings.Join(then, ", "), strings.Join(els, ", "))
}

// describeTxnResult is the answer (without the revision).
func (o *Op) describeTxnResult() string {
	if o.Succeeded {
		return fmt.Sprintf("succeeded, deleted %v", o.DelCounts)
	}
	var reads []string
	for i, r := range o.ReadKVs {
		reads = append(reads, o.Reads[i]+": "+readString(r.Found, r.Value, r.ModRev))
	}
	return "failed, read " + strings.Join(reads, ", ")
}

// executeTxn sends o's txn and fills in its outcome.
func executeTxn(ctx context.Context, cl *clientv3.Client, o *Op) error {
	var cmps []clientv3.Cmp
	for _, c := range o.Cmps {
		if c.ByRev {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(c.Key), "=", c.ModRev))
		} else {
			cmps = append(cmps, clientv3.Compare(clientv3.Value(c.Key), "=", c.Value))
		}
	}
	var then, els []clientv3.Op
	for _, p := range o.Puts {
		then = append(then, clientv3.OpPut(p.Key, p.Value))
	}
	for _, d := range o.Dels {
		then = append(then, clientv3.OpDelete(d))
	}
	for _, r := range o.Reads {
		els = append(els, clientv3.OpGet(r))
	}
	r, err := cl.Txn(ctx).If(cmps...).Then(then...).Else(els...).Commit()
	if err != nil {
		return err
	}
	o.Rev, o.Succeeded = r.Header.Revision, r.Succeeded
	if r.Succeeded {
		if len(r.Responses) != len(then) {
			return fmt.Errorf("txn: %d responses to %d operations", len(r.Responses), len(then))
		}
		for _, rsp := range r.Responses[len(o.Puts):] {
			dr := rsp.GetResponseDeleteRange()
			if dr == nil {
				return fmt.Errorf("txn: a delete answered %v", rsp)
			}
			o.DelCounts = append(o.DelCounts, dr.Deleted)
		}
		return nil
	}
	if len(r.Responses) != len(els) {
		return fmt.Errorf("txn: %d responses to %d gets", len(r.Responses), len(els))
	}
	for _, rsp := range r.Responses {
		rr := rsp.GetResponseRange()
		if rr == nil {
			return fmt.Errorf("txn: a get answered %v", rsp)
		}
		var tr txnRead
		if len(rr.Kvs) > 0 {
			tr = txnRead{true, string(rr.Kvs[0].Value), rr.Kvs[0].ModRevision}
		}
		o.ReadKVs = append(o.ReadKVs, tr)
	}
	return nil
}

// newTxn builds the etcd-like profile's multi-op txn on four distinct
// plain keys a, b, c, d: If(mod(a) = last seen, [value(b) = last seen])
// Then(put a, put c, [delete d]) Else(get a, get b). The compares use what
// this client last saw, so both branches run often.
func (tc *trafficClient) newTxn() *Op {
	perm := tc.rnd.Perm(tc.cfg.Keys)
	a, b, c, d := key(perm[0]), key(perm[1]), key(perm[2]), key(perm[3])
	o := &Op{Client: tc.id, Member: tc.member, Kind: OpTxn}
	o.Cmps = []txnCmp{{Key: a, ByRev: true, ModRev: tc.lastRev[a]}}
	if tc.rnd.IntN(2) == 0 {
		v := tc.last[b]
		if v == "" {
			v = "none"
		}
		o.Cmps = append(o.Cmps, txnCmp{Key: b, Value: v})
	}
	o.Puts = []txnPut{{Key: a}, {Key: c}}
	if tc.rnd.IntN(3) > 0 {
		o.Dels = []string{d}
	}
	o.Reads = []string{a, b}
	return o
}

// newLeaseKeyDelete builds the lease-heavy profile's client delete of a
// lease key: Txn Then(Delete(kl<i>), Put(k<j>, unique)). The put marks the
// revision as a client's, so the store's history tells it apart from a
// lease's end (history_test.go).
func (tc *trafficClient) newLeaseKeyDelete() *Op {
	return &Op{Client: tc.id, Member: tc.member, Kind: OpTxn,
		Puts: []txnPut{{Key: key(tc.rnd.IntN(tc.cfg.Keys))}},
		Dels: []string{leaseKey(tc.rnd.IntN(tc.cfg.LeaseKeys))}}
}

// noteTxn updates the client's last values and mod revisions after a txn.
func (tc *trafficClient) noteTxn(o *Op) {
	if o.Succeeded {
		for _, p := range o.Puts {
			tc.last[p.Key], tc.lastRev[p.Key] = p.Value, o.Rev
		}
		for _, d := range o.Dels {
			delete(tc.last, d)
			delete(tc.lastRev, d)
		}
		return
	}
	for i, r := range o.ReadKVs {
		k := o.Reads[i]
		if r.Found {
			tc.last[k], tc.lastRev[k] = r.Value, r.ModRev
		} else {
			delete(tc.last, k)
			delete(tc.lastRev, k)
		}
	}
}
