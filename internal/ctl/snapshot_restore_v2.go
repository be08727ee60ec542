package ctl

import (
	"encoding/json"

	"github.com/cairnkv/cairn/internal/membership"
)

// restoreV2Store renders the v2 store etcdutl 3.6 writes into the .snap of a
// restored data dir: each member's raftAttributes created in turn (store
// indexes 1..n, in member ID order), the matching "create" events in the
// watcher history and the store's counters (one failed get of /0/members,
// n creates). internal/membership's MarshalV2Snapshot renders a running
// member's store (no event history, attributes included), which is not
// what a restore leaves behind, so the restore has its own renderer.
func restoreV2Store(members []*membership.Member) ([]byte, error) {
	type node struct {
		Path          string           `json:"Path"`
		CreatedIndex  uint64           `json:"CreatedIndex"`
		ModifiedIndex uint64           `json:"ModifiedIndex"`
		ExpireTime    string           `json:"ExpireTime"`
		Value         string           `json:"Value"`
		Children      map[string]*node `json:"Children"`
	}
	type eventNode struct {
		Key           string `json:"key"`
		Value         string `json:"value"`
		ModifiedIndex uint64 `json:"modifiedIndex"`
		CreatedIndex  uint64 `json:"createdIndex"`
	}
	type event struct {
		Action string    `json:"action"`
		Node   eventNode `json:"node"`
	}
	type stats struct {
		GetsSuccess             int `json:"getsSuccess"`
		GetsFail                int `json:"getsFail"`
		SetsSuccess             int `json:"setsSuccess"`
		SetsFail                int `json:"setsFail"`
		DeleteSuccess           int `json:"deleteSuccess"`
		DeleteFail              int `json:"deleteFail"`
		UpdateSuccess           int `json:"updateSuccess"`
		UpdateFail              int `json:"updateFail"`
		CreateSuccess           int `json:"createSuccess"`
		CreateFail              int `json:"createFail"`
		CompareAndSwapSuccess   int `json:"compareAndSwapSuccess"`
		CompareAndSwapFail      int `json:"compareAndSwapFail"`
		CompareAndDeleteSuccess int `json:"compareAndDeleteSuccess"`
		CompareAndDeleteFail    int `json:"compareAndDeleteFail"`
		ExpireCount             int `json:"expireCount"`
		Watchers                int `json:"watchers"`
	}
	type queue struct {
		Events   []*event `json:"Events"`
		Size     int      `json:"Size"`
		Front    int      `json:"Front"`
		Back     int      `json:"Back"`
		Capacity int      `json:"Capacity"`
	}
	type store struct {
		Root       *node `json:"Root"`
		WatcherHub struct {
			EventHistory struct {
				Queue      queue  `json:"Queue"`
				StartIndex uint64 `json:"StartIndex"`
				LastIndex  uint64 `json:"LastIndex"`
			} `json:"EventHistory"`
		} `json:"WatcherHub"`
		CurrentIndex   uint64 `json:"CurrentIndex"`
		Stats          stats  `json:"Stats"`
		CurrentVersion int    `json:"CurrentVersion"`
	}
	const zeroTime = "0001-01-01T00:00:00Z"
	dir := func(path string, idx uint64) *node {
		return &node{Path: path, CreatedIndex: idx, ModifiedIndex: idx, ExpireTime: zeroTime, Children: map[string]*node{}}
	}
	const capacity = 1000
	st := store{CurrentVersion: 2}
	st.Root = dir("/", 0)
	zero := dir("/0", 0)
	st.Root.Children["0"] = zero
	st.Root.Children["1"] = dir("/1", 0)
	q := &st.WatcherHub.EventHistory.Queue
	q.Events = make([]*event, capacity)
	q.Capacity = capacity
	st.Stats.GetsFail = 1 // the existence check of /0/members before the first create
	var ms *node
	for i, m := range members {
		idx := uint64(i + 1)
		ra, err := json.Marshal(m.RaftAttributes)
		if err != nil {
			return nil, err
		}
		if ms == nil {
			ms = dir("/0/members", idx)
			zero.Children["members"] = ms
		}
		p := "/0/members/" + membership.FormatID(m.ID)
		n := dir(p, idx)
		n.Children["raftAttributes"] = &node{Path: p + "/raftAttributes", CreatedIndex: idx, ModifiedIndex: idx, ExpireTime: zeroTime, Value: string(ra)}
		ms.Children[membership.FormatID(m.ID)] = n
		q.Events[i] = &event{Action: "create", Node: eventNode{Key: p + "/raftAttributes", Value: string(ra), ModifiedIndex: idx, CreatedIndex: idx}}
		q.Size, q.Back = i+1, i+1
		st.Stats.CreateSuccess++
		st.CurrentIndex = idx
		if i == 0 {
			st.WatcherHub.EventHistory.StartIndex = idx
		}
		st.WatcherHub.EventHistory.LastIndex = idx
	}
	return json.Marshal(&st)
}
