package server

import (
	"encoding/json"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/wal"
)

// forceNewCluster rewrites the end of the log for --force-new-cluster, as
// etcd does: it keeps what is committed (the commit index, or the backend's
// consistent index if that is further), drops the uncommitted tail, and
// appends committed conf changes that make this member the only voter —
// AddNode(self) when self is not in the configuration, then RemoveNode for
// every other member. The member then restarts as a one-member cluster with
// its member ID, cluster ID and data.
//
// It returns the hard state and entries to restart raft with; the WAL has
// the new entries durably when it returns.
func forceNewCluster(lg *zap.Logger, w *wal.WAL, st raftpb.HardState, ents []raftpb.Entry,
	snap raftpb.ConfState, snapIndex, consistentIndex, self, clusterID uint64) (raftpb.HardState, []raftpb.Entry, error) {
	last := snapIndex
	if len(ents) > 0 {
		last = ents[len(ents)-1].Index
	}
	commit := min(max(st.Commit, consistentIndex), last)
	kept := ents
	for i, e := range ents {
		if e.Index > commit {
			kept = ents[:i]
			break
		}
	}
	ids := confIDs(snap, kept)
	var add []raftpb.Entry
	next := commit + 1
	appendCC := func(cc raftpb.ConfChange) error {
		data, err := cc.Marshal()
		if err != nil {
			return err
		}
		add = append(add, raftpb.Entry{Type: raftpb.EntryConfChange, Term: st.Term, Index: next, Data: data})
		next++
		return nil
	}
	if !slices.Contains(ids, self) {
		ctx, err := json.Marshal(membership.Member{ID: self, RaftAttributes: membership.RaftAttributes{PeerURLs: []string{"http://localhost:2380"}}})
		if err != nil {
			return st, nil, err
		}
		if err := appendCC(raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: self, Context: ctx}); err != nil {
			return st, nil, err
		}
	}
	for _, id := range ids {
		if id == self {
			continue
		}
		if err := appendCC(raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: id}); err != nil {
			return st, nil, err
		}
	}
	st.Commit = next - 1
	if err := w.Save(st, add); err != nil {
		return st, nil, fmt.Errorf("force new cluster: save wal: %w", err)
	}
	lg.Info("forcing restart member",
		zap.String("cluster-id", membership.FormatID(clusterID)),
		zap.String("local-member-id", membership.FormatID(self)),
		zap.Uint64("commit-index", st.Commit))
	return st, append(kept[:len(kept):len(kept)], add...), nil
}

// confIDs returns the member IDs of the raft configuration after the
// snapshot and the conf changes in ents, sorted.
func confIDs(cs raftpb.ConfState, ents []raftpb.Entry) []uint64 {
	set := map[uint64]bool{}
	for _, id := range cs.Voters {
		set[id] = true
	}
	for _, id := range cs.Learners {
		set[id] = true
	}
	for _, e := range ents {
		if e.Type != raftpb.EntryConfChange {
			continue
		}
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			continue
		}
		switch cc.Type {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			set[cc.NodeID] = true
		case raftpb.ConfChangeRemoveNode:
			delete(set, cc.NodeID)
		}
	}
	ids := make([]uint64, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
