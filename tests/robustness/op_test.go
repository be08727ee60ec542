package robustness

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// OpKind is a client operation of the etcd-like traffic.
type OpKind string

const (
	OpGet    OpKind = "get"    // linearizable single-key Range
	OpPut    OpKind = "put"    // Put of a unique value
	OpDelete OpKind = "delete" // DeleteRange of one key
	OpCAS    OpKind = "cas"    // Txn: If(Value(key) = Expect) Then(Put(key, Value)) Else(Get(key)); with ByRev, If(ModRevision(key) = ExpectRev)
	// OpList is a paginated list of the keys under prefix Key, Limit keys
	// a page: the first page linearizable at the current revision (Rev),
	// the next ones pinned to Rev, each from after the last key, as
	// Kubernetes lists.
	OpList OpKind = "list"
	// OpTxn is a multi-op transaction on several keys (txn_test.go):
	// If(Cmps) Then(Put each of Puts, Delete each of Dels) Else(Get each
	// of Reads). Every put writes a unique value.
	OpTxn OpKind = "txn"
	// OpStaleGet is a linearizable get of Key at an explicit past revision
	// AtRev (WithRev), one the client had already seen; Rev is the
	// answer's header revision (the current one, not AtRev).
	OpStaleGet OpKind = "stale-get"
	// OpSerialGet and OpSerialList are a get and a paginated list sent
	// WithSerializable: the member answers from its own applied state,
	// which may be behind, at the answer's header revision Rev. They are
	// not linearizable and stay out of the model (pastread_test.go checks
	// them).
	OpSerialGet  OpKind = "serial-get"
	OpSerialList OpKind = "serial-list"

	// Lease traffic. A put with a lease is an OpPut with Lease set.
	OpLeaseGrant  OpKind = "grant"      // LeaseGrant(TTL): Lease, TTL are the answer
	OpLeaseRevoke OpKind = "revoke"     // LeaseRevoke(Lease)
	OpKeepAlive   OpKind = "keepalive"  // one LeaseKeepAlive round trip: TTL is the answer
	OpLeaseTTL    OpKind = "timetolive" // LeaseTimeToLive(Lease): TTL (-1: not found) and GrantedTTL are the answer
	OpLeaseList   OpKind = "leases"     // LeaseLeases: Leases is the answer
	// OpLeaseDelete is not a client request: validation adds one per key a
	// lease's end deleted (revoke or expiry), at the revision the store
	// shows, so the per-key model accounts for it (see docs/robustness.md).
	OpLeaseDelete OpKind = "lease-delete"
)

// never is the return time of an operation whose effect may land at any
// time after its call (a write that failed or timed out on the client).
const never = time.Duration(math.MaxInt64)

// Op is one client operation with its call and return times (since the run
// started, monotonic) and what it returned. The history format leaves room
// for other kinds (lease, watch, v2) as their traffic lands.
type Op struct {
	ID     int    // index in the run's history
	Client int    // traffic client; one request in flight per client
	Member string // the member the client is pinned to
	Kind   OpKind
	Key    string
	Value  string // put/cas: the unique value written
	Expect string // cas: the value compared with
	// cas with ByRev: compares the key's mod revision with ExpectRev (0:
	// the key is absent), as Kubernetes' optimistic updates and creates
	// do.
	ByRev     bool
	ExpectRev int64
	AtRev     int64      // stale-get: the revision asked for (Rev is the header's)
	Limit     int64      // list: keys per page
	Listed    []listedKV // list: every page's keys, in order
	Count     int64      // list: the first page's count (keys under the prefix at Rev)
	Pages     int        // list: pages read

	// txn (OpTxn).
	Cmps      []txnCmp
	Puts      []txnPut  // then: puts, each of a unique value
	Dels      []string  // then: deletes
	Reads     []string  // else: gets
	ReadKVs   []txnRead // else, when it ran: what each get read
	DelCounts []int64   // then, when it ran: keys each delete deleted

	GrantedTTL int64   // timetolive: the granted TTL answered
	Leases     []int64 // leases: the IDs answered

	Call   time.Duration
	Return time.Duration // never: the effect, if any, may come at any time

	// Outcome.
	Err       string // "" on success
	Unknown   bool   // a write whose effect is not known: it may or may not have happened
	Resolved  string // how the validation settled an unknown write ("" if it did not)
	Rev       int64  // response header revision (put/cas/delete that changed the key: its revision)
	Found     bool   // get, failed cas: the key exists
	Got       string // get, failed cas: the value read
	ModRev    int64  // get, failed cas: the mod revision read
	Deleted   int64  // delete: keys deleted
	Succeeded bool   // cas: the compare held
	Lease     int64  // put with a lease, grant, revoke, keepalive, lease-delete: the lease
	TTL       int64  // grant, keepalive: the TTL answered
	Definite  bool   // a write that failed with an error saying it did not happen
	// Proc is the member's process (framework.Member.Starts) that answered:
	// set when the member was not restarted between call and return, 0
	// when it was (or unknown).
	Proc int
	err  error // the client's error, for the traffic's own decisions
}

// IsWrite says whether the op may change the store.
func (o *Op) IsWrite() bool {
	switch o.Kind {
	case OpGet, OpKeepAlive, OpList, OpLeaseTTL, OpLeaseList, OpStaleGet, OpSerialGet, OpSerialList:
		return false
	}
	return true
}

// isSerializable says whether the op is a serializable read (served from
// the member's own state, possibly stale).
func (o *Op) isSerializable() bool { return o.Kind == OpSerialGet || o.Kind == OpSerialList }

// listedKV is one key a list returned.
type listedKV struct {
	Key, Value string
	ModRev     int64
}

// IsKeyOp says whether the op reads or writes one key (and so takes part
// in the per-key linearizability check); lease requests are checked apart.
func (o *Op) IsKeyOp() bool {
	switch o.Kind {
	case OpLeaseGrant, OpLeaseRevoke, OpKeepAlive, OpList, OpSerialList, OpTxn, OpLeaseTTL, OpLeaseList:
		return false
	}
	return true
}

// Failed is an op with no information: a read that errored. (A write that
// errored has an unknown outcome, until validation resolves it.)
func (o *Op) Failed() bool { return o.Err != "" && (!o.IsWrite() || o.Definite) }

// Changes says whether a successful op changed the store (and so has its
// own revision).
func (o *Op) Changes() bool {
	switch o.Kind {
	case OpPut:
		return true
	case OpDelete:
		return o.Deleted > 0
	case OpCAS, OpTxn:
		return o.Succeeded
	case OpLeaseDelete:
		return true
	}
	return false
}

// String is one line of the history file.
func (o *Op) String() string {
	var b strings.Builder
	ret := "        ∞"
	if o.Return != never {
		ret = fmt.Sprintf("%9.3f", o.Return.Seconds())
	}
	who := fmt.Sprintf("c%d@%s", o.Client, o.Member)
	if o.Proc > 1 {
		who += fmt.Sprintf("#%d", o.Proc) // answered by the member's o.Proc-th process
	}
	fmt.Fprintf(&b, "#%-5d %9.3f %s %-7s ", o.ID, o.Call.Seconds(), ret, who)
	b.WriteString(o.describe())
	return b.String()
}

// describe is the operation and its outcome, without times.
func (o *Op) describe() string {
	var b strings.Builder
	switch o.Kind {
	case OpGet:
		fmt.Fprintf(&b, "get %s", o.Key)
	case OpStaleGet:
		fmt.Fprintf(&b, "get %s at revision %d", o.Key, o.AtRev)
	case OpSerialGet:
		fmt.Fprintf(&b, "serializable get %s", o.Key)
	case OpPut:
		fmt.Fprintf(&b, "put %s=%s", o.Key, o.Value)
		if o.Lease != 0 {
			fmt.Fprintf(&b, " lease %x", o.Lease)
		}
	case OpLeaseGrant:
		b.WriteString("lease grant")
	case OpLeaseRevoke:
		fmt.Fprintf(&b, "lease revoke %x", o.Lease)
	case OpKeepAlive:
		fmt.Fprintf(&b, "lease keepalive %x", o.Lease)
	case OpLeaseDelete:
		fmt.Fprintf(&b, "(lease %x ended: %s deleted)", o.Lease, o.Key)
	case OpDelete:
		fmt.Fprintf(&b, "delete %s", o.Key)
	case OpCAS:
		if o.ByRev {
			fmt.Fprintf(&b, "cas %s: mod %d→%s", o.Key, o.ExpectRev, o.Value)
		} else {
			fmt.Fprintf(&b, "cas %s: %s→%s", o.Key, o.Expect, o.Value)
		}
	case OpList:
		fmt.Fprintf(&b, "list %s* limit %d", o.Key, o.Limit)
	case OpSerialList:
		fmt.Fprintf(&b, "serializable list %s* limit %d", o.Key, o.Limit)
	case OpTxn:
		b.WriteString(o.describeTxn())
	case OpLeaseTTL:
		fmt.Fprintf(&b, "lease timetolive %x", o.Lease)
	case OpLeaseList:
		b.WriteString("lease leases")
	}
	b.WriteString(" → ")
	switch {
	case o.Err != "" && o.Definite:
		fmt.Fprintf(&b, "failed (%s)", o.Err)
	case o.Unknown || (o.Err != "" && o.IsWrite()):
		fmt.Fprintf(&b, "unknown (%s)", o.Err)
	case o.Err != "":
		fmt.Fprintf(&b, "error (%s)", o.Err)
	default:
		switch o.Kind {
		case OpGet, OpStaleGet, OpSerialGet:
			b.WriteString(readString(o.Found, o.Got, o.ModRev))
		case OpPut, OpLeaseRevoke, OpLeaseDelete:
			b.WriteString("ok")
		case OpLeaseGrant:
			fmt.Fprintf(&b, "lease %x TTL %d", o.Lease, o.TTL)
		case OpKeepAlive:
			fmt.Fprintf(&b, "TTL %d", o.TTL)
		case OpLeaseTTL:
			fmt.Fprintf(&b, "TTL %d granted %d", o.TTL, o.GrantedTTL)
		case OpLeaseList:
			fmt.Fprintf(&b, "%d leases %x", len(o.Leases), o.Leases)
		case OpTxn:
			b.WriteString(o.describeTxnResult())
		case OpDelete:
			fmt.Fprintf(&b, "deleted %d", o.Deleted)
		case OpList, OpSerialList:
			fmt.Fprintf(&b, "%d keys (count %d) in %d pages:", len(o.Listed), o.Count, o.Pages)
			for _, kv := range o.Listed {
				fmt.Fprintf(&b, " %s=%s@%d", kv.Key, kv.Value, kv.ModRev)
			}
		case OpCAS:
			if o.Succeeded {
				b.WriteString("succeeded")
			} else {
				b.WriteString("failed, read " + readString(o.Found, o.Got, o.ModRev))
			}
		}
		fmt.Fprintf(&b, " rev %d", o.Rev)
	}
	if o.Resolved != "" {
		fmt.Fprintf(&b, " [resolved: %s]", o.Resolved)
	}
	return b.String()
}

func readString(found bool, v string, mod int64) string {
	if !found {
		return "absent"
	}
	return fmt.Sprintf("%s (mod %d)", v, mod)
}

// Event is something the harness did (a fault, a restart) on the run's
// timeline.
type Event struct {
	At   time.Duration
	What string
}

// writeHistory writes the run's history sorted by call time, with the
// harness's events interleaved, to path.
func writeHistory(path, header string, ops []*Op, events []Event) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, "# id     call(s) return(s) client@member  operation → outcome")
	sorted := slices.Clone(ops)
	slices.SortStableFunc(sorted, func(a, b *Op) int {
		if a.Call != b.Call {
			if a.Call < b.Call {
				return -1
			}
			return 1
		}
		return a.ID - b.ID
	})
	ev := slices.Clone(events)
	for _, o := range sorted {
		for len(ev) > 0 && ev[0].At <= o.Call {
			fmt.Fprintf(w, "====== %9.3f %s\n", ev[0].At.Seconds(), ev[0].What)
			ev = ev[1:]
		}
		fmt.Fprintln(w, o.String())
	}
	for _, e := range ev {
		fmt.Fprintf(w, "====== %9.3f %s\n", e.At.Seconds(), e.What)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// timeline lists the harness's events of a run.
func (r *runResult) timeline() string {
	var b strings.Builder
	b.WriteString("timeline:")
	for _, e := range r.Events {
		fmt.Fprintf(&b, "\n  %8.3fs %s", e.At.Seconds(), e.What)
	}
	return b.String()
}
