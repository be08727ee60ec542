package apply

import (
	"errors"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/mvcc"
	"github.com/cairnkv/cairn/internal/schema"
)

// ConfChange validates and applies a conf change to the member set, calls
// toRaft with the change raft must apply (NodeID zeroed when validation
// failed, so raft treats it as a no-op), and records the resulting raft
// configuration and the consistent index — all in one backend transaction.
// It returns the validation error for the proposer.
func (a *Applier) ConfChange(e raftpb.Entry, cc raftpb.ConfChange, toRaft func(raftpb.ConfChange) *raftpb.ConfState) error {
	replay := e.Index <= a.consistentIndex
	verr := a.cl.ValidateConfChange(cc)
	if errors.Is(verr, membership.ErrBadContext) {
		// etcd panics here; a malformed change from a peer must not be
		// half-applied, so raft gets a no-op and the proposer an error.
		a.lg.Error("rejected malformed conf change", zap.Error(verr))
	}
	var (
		w  *mvcc.WriteTxn
		tx *backend.WriteTx
	)
	if !replay {
		w = a.kv.Write()
		tx = w.BackendTx()
	}
	if verr != nil {
		cc.NodeID = 0
	} else {
		var p membership.Persister
		if tx != nil {
			p = persister{tx}
		}
		if err := a.cl.ApplyConfChange(cc, p); err != nil {
			a.lg.Error("failed to persist conf change", zap.Error(err))
		}
	}
	cs := toRaft(cc)
	if tx != nil {
		if cs != nil {
			if err := schema.WriteConfState(tx, cs); err != nil {
				a.lg.Error("failed to persist conf state", zap.Error(err))
			}
		}
		a.end(w, e)
	}
	return verr
}

// persister writes membership changes into the backend transaction held by
// the apply goroutine.
type persister struct{ tx *backend.WriteTx }

func (p persister) SaveMember(m *membership.Member) error {
	b, err := membership.MarshalMember(m)
	if err != nil {
		return err
	}
	return schema.PutMember(p.tx, m.ID, b)
}

func (p persister) RemoveMember(id uint64) error { return schema.RemoveMember(p.tx, id) }

func (p persister) SaveClusterVersion(v string) error { return schema.WriteClusterVersion(p.tx, v) }
