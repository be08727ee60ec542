package membership

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
)

// The raft snapshot files (.snap) of an etcd 3.6 data dir carry the v2 store
// as JSON. In 3.6 it holds only the membership (/0/members,
// /0/removed_members, /0/version) and an empty /1. cairn writes the same
// document, so etcd can start on a data dir cairn wrote, and reads it back
// to restore the member set as of the snapshot.

const (
	v2ZeroTime        = "0001-01-01T00:00:00Z"
	v2HistoryCapacity = 1000
	v2StoreVersion    = 2
)

type v2Node struct {
	Path          string             `json:"Path"`
	CreatedIndex  uint64             `json:"CreatedIndex"`
	ModifiedIndex uint64             `json:"ModifiedIndex"`
	ExpireTime    string             `json:"ExpireTime"`
	Value         string             `json:"Value"`
	Children      map[string]*v2Node `json:"Children"`
}

type v2Queue struct {
	Events   []json.RawMessage `json:"Events"`
	Size     int               `json:"Size"`
	Front    int               `json:"Front"`
	Back     int               `json:"Back"`
	Capacity int               `json:"Capacity"`
}

type v2Store struct {
	Root       *v2Node `json:"Root"`
	WatcherHub struct {
		EventHistory struct {
			Queue      v2Queue `json:"Queue"`
			StartIndex uint64  `json:"StartIndex"`
			LastIndex  uint64  `json:"LastIndex"`
		} `json:"EventHistory"`
	} `json:"WatcherHub"`
	CurrentIndex   uint64         `json:"CurrentIndex"`
	Stats          map[string]int `json:"Stats"`
	CurrentVersion int            `json:"CurrentVersion"`
}

var v2StatNames = []string{"getsSuccess", "getsFail", "setsSuccess", "setsFail", "deleteSuccess", "deleteFail",
	"updateSuccess", "updateFail", "createSuccess", "createFail", "compareAndSwapSuccess", "compareAndSwapFail",
	"compareAndDeleteSuccess", "compareAndDeleteFail", "expireCount", "watchers"}

func dirNode(path string, idx uint64) *v2Node {
	return &v2Node{Path: path, CreatedIndex: idx, ModifiedIndex: idx, ExpireTime: v2ZeroTime, Children: map[string]*v2Node{}}
}

func leafNode(path, value string, idx uint64) *v2Node {
	return &v2Node{Path: path, CreatedIndex: idx, ModifiedIndex: idx, ExpireTime: v2ZeroTime, Value: value}
}

// MarshalV2Snapshot renders the member set as etcd 3.6's v2 store JSON.
func (c *Cluster) MarshalV2Snapshot() ([]byte, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var idx uint64
	next := func() uint64 { idx++; return idx }

	zero := dirNode("/0", 0)
	ids := make([]uint64, 0, len(c.members))
	for id := range c.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) > 0 {
		members := dirNode("/0/members", 0)
		for _, id := range ids {
			m := c.members[id]
			p := "/0/members/" + FormatID(id)
			n := dirNode(p, next())
			members.CreatedIndex, members.ModifiedIndex = n.CreatedIndex, n.CreatedIndex
			ra, err := json.Marshal(m.RaftAttributes)
			if err != nil {
				return nil, err
			}
			n.Children["raftAttributes"] = leafNode(p+"/raftAttributes", string(ra), n.CreatedIndex)
			if m.IsStarted() {
				a, err := json.Marshal(m.Attributes)
				if err != nil {
					return nil, err
				}
				n.Children["attributes"] = leafNode(p+"/attributes", string(a), next())
			}
			members.Children[FormatID(id)] = n
		}
		zero.Children["members"] = members
	}
	if len(c.removed) > 0 {
		removed := dirNode("/0/removed_members", 0)
		rids := make([]uint64, 0, len(c.removed))
		for id := range c.removed {
			rids = append(rids, id)
		}
		slices.Sort(rids)
		for _, id := range rids {
			i := next()
			removed.CreatedIndex, removed.ModifiedIndex = i, i
			removed.Children[FormatID(id)] = leafNode("/0/removed_members/"+FormatID(id), "", i)
		}
		zero.Children["removed_members"] = removed
	}
	if c.version != "" {
		zero.Children["version"] = leafNode("/0/version", c.version, next())
	}
	root := dirNode("/", 0)
	root.Children["0"] = zero
	root.Children["1"] = dirNode("/1", 0)

	st := v2Store{Root: root, CurrentIndex: idx, CurrentVersion: v2StoreVersion, Stats: map[string]int{}}
	for _, n := range v2StatNames {
		st.Stats[n] = 0
	}
	q := &st.WatcherHub.EventHistory.Queue
	q.Capacity = v2HistoryCapacity
	q.Events = make([]json.RawMessage, v2HistoryCapacity)
	for i := range q.Events {
		q.Events[i] = json.RawMessage("null")
	}
	return json.Marshal(&st)
}

// UnmarshalV2Snapshot reads the membership out of a v2 store JSON document
// written by etcd or cairn.
func UnmarshalV2Snapshot(b []byte) (members []*Member, removed []uint64, version string, err error) {
	var st v2Store
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, nil, "", fmt.Errorf("decode v2 store: %w", err)
	}
	if st.Root == nil {
		return nil, nil, "", nil
	}
	zero := st.Root.Children["0"]
	if zero == nil {
		return nil, nil, "", nil
	}
	if v := zero.Children["version"]; v != nil {
		version = v.Value
	}
	if ms := zero.Children["members"]; ms != nil {
		for key, n := range ms.Children {
			id, err := ParseID(key)
			if err != nil {
				return nil, nil, "", fmt.Errorf("member key %q: %w", key, err)
			}
			m := &Member{ID: id}
			if ra := n.Children["raftAttributes"]; ra != nil {
				if err := json.Unmarshal([]byte(ra.Value), &m.RaftAttributes); err != nil {
					return nil, nil, "", fmt.Errorf("member %s raft attributes: %w", key, err)
				}
			}
			if a := n.Children["attributes"]; a != nil {
				if err := json.Unmarshal([]byte(a.Value), &m.Attributes); err != nil {
					return nil, nil, "", fmt.Errorf("member %s attributes: %w", key, err)
				}
			}
			members = append(members, m)
		}
	}
	if rs := zero.Children["removed_members"]; rs != nil {
		for key := range rs.Children {
			id, err := ParseID(key)
			if err != nil {
				return nil, nil, "", fmt.Errorf("removed member key %q: %w", key, err)
			}
			removed = append(removed, id)
		}
	}
	slices.SortFunc(members, func(a, b *Member) int { return cmp.Compare(a.ID, b.ID) })
	slices.Sort(removed)
	return members, removed, version, nil
}
