package v2store

import (
	"encoding/json"
	"sync/atomic"
)

// stats are the counters of /v2/stats/store. Apply-side counters change
// under the store's write lock, gets under its read lock, so all are
// atomic.
type stats struct {
	getsSuccess, getsFail                         atomic.Uint64
	setsSuccess, setsFail                         atomic.Uint64
	deleteSuccess, deleteFail                     atomic.Uint64
	updateSuccess, updateFail                     atomic.Uint64
	createSuccess, createFail                     atomic.Uint64
	compareAndSwapSuccess, compareAndSwapFail     atomic.Uint64
	compareAndDeleteSuccess, compareAndDeleteFail atomic.Uint64
	expireCount                                   atomic.Uint64
}

func count(ok bool, success, fail *atomic.Uint64) {
	if ok {
		success.Add(1)
	} else {
		fail.Add(1)
	}
}

// countApply counts a write by its operation.
func (st *stats) countApply(op string, ok bool) {
	switch op {
	case OpSet:
		count(ok, &st.setsSuccess, &st.setsFail)
	case OpCreate:
		count(ok, &st.createSuccess, &st.createFail)
	case OpUpdate:
		count(ok, &st.updateSuccess, &st.updateFail)
	case OpCAS:
		count(ok, &st.compareAndSwapSuccess, &st.compareAndSwapFail)
	case OpDelete:
		count(ok, &st.deleteSuccess, &st.deleteFail)
	case OpCAD:
		count(ok, &st.compareAndDeleteSuccess, &st.compareAndDeleteFail)
	}
}

// StatsJSON is the body of /v2/stats/store, etcd 3.4's fields in its
// order. The counters are this member's since it started (etcd 3.4 also
// counts its own membership writes).
func (s *Store) StatsJSON() []byte {
	st := &s.stats
	b, _ := json.Marshal(struct {
		GetsSuccess             uint64 `json:"getsSuccess"`
		GetsFail                uint64 `json:"getsFail"`
		SetsSuccess             uint64 `json:"setsSuccess"`
		SetsFail                uint64 `json:"setsFail"`
		DeleteSuccess           uint64 `json:"deleteSuccess"`
		DeleteFail              uint64 `json:"deleteFail"`
		UpdateSuccess           uint64 `json:"updateSuccess"`
		UpdateFail              uint64 `json:"updateFail"`
		CreateSuccess           uint64 `json:"createSuccess"`
		CreateFail              uint64 `json:"createFail"`
		CompareAndSwapSuccess   uint64 `json:"compareAndSwapSuccess"`
		CompareAndSwapFail      uint64 `json:"compareAndSwapFail"`
		CompareAndDeleteSuccess uint64 `json:"compareAndDeleteSuccess"`
		CompareAndDeleteFail    uint64 `json:"compareAndDeleteFail"`
		ExpireCount             uint64 `json:"expireCount"`
		Watchers                int    `json:"watchers"`
	}{
		st.getsSuccess.Load(), st.getsFail.Load(), st.setsSuccess.Load(), st.setsFail.Load(),
		st.deleteSuccess.Load(), st.deleteFail.Load(), st.updateSuccess.Load(), st.updateFail.Load(),
		st.createSuccess.Load(), st.createFail.Load(), st.compareAndSwapSuccess.Load(), st.compareAndSwapFail.Load(),
		st.compareAndDeleteSuccess.Load(), st.compareAndDeleteFail.Load(), st.expireCount.Load(), s.Watchers(),
	})
	return b
}
