package apply

import (
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/v2store"
)

// SetV2 installs the v2 tree that carrier txns (v2store.Carrier) are
// applied to.
func (a *Applier) SetV2(s *v2store.Store) { a.v2 = s }

// applyV2 applies a v2 write carried by a txn etcd applies as a no-op. The
// tree's changed records and the consistent index are written in one
// backend transaction. The clock is read only to render the response's
// ttl fields; the tree itself depends on the request alone.
func (a *Applier) applyV2(e raftpb.Entry, r *v2store.Request) Result {
	if a.alarms.noSpace() && r.Op != v2store.OpDelete && r.Op != v2store.OpCAD && r.Op != v2store.OpExpire {
		a.recordIndex(e)
		return Result{Err: ErrNoSpace}
	}
	w := a.kv.Write()
	defer a.end(w, e)
	ev, changed, err := a.v2.Apply(r, time.Now())
	if len(changed) > 0 || err == nil {
		tx := w.BackendTx()
		if perr := tx.CreateBucket(v2store.Bucket); perr != nil {
			a.lg.Error("v2 store: create bucket", zap.Error(perr))
		}
		for _, p := range append(changed, v2store.IndexKey) {
			var perr error
			if rec := a.v2.Record(p); rec != nil {
				perr = tx.Put(v2store.Bucket, []byte(p), rec)
			} else {
				perr = tx.Delete(v2store.Bucket, []byte(p))
			}
			if perr != nil {
				a.lg.Error("v2 store: persist", zap.String("path", p), zap.Error(perr))
			}
		}
	}
	if err != nil {
		return Result{Err: err}
	}
	return Result{Resp: ev}
}
