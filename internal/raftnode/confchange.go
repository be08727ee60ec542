package raftnode

import "go.etcd.io/raft/v3/raftpb"

// ProposeConfChange steps a configuration change (raft's ConfChange v1, the
// only form etcd members accept) into raft on the loop goroutine. It
// returns raft.ErrProposalDropped when raft refuses it at once: no leader
// is known, or leadership is being transferred. Once stepped, the change
// reaches the applier like any entry; raft replaces it with an empty entry
// if another conf change is still unapplied, so the proposer must bound
// its wait.
func (n *Node) ProposeConfChange(cc raftpb.ConfChange) error {
	var err error
	if derr := n.do(func() { err = n.rn.ProposeConfChange(cc) }); derr != nil {
		return derr
	}
	return err
}
