package membership

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"go.etcd.io/raft/v3/raftpb"
)

// Persister stores membership changes. The apply goroutine calls it inside
// the backend transaction of the entry being applied.
type Persister interface {
	SaveMember(m *Member) error
	// RemoveMember deletes the member and records its ID as removed.
	RemoveMember(id uint64) error
	SaveClusterVersion(v string) error
}

// Cluster is the member set as of the last applied entry.
//
// Threading: mutated only by the apply goroutine; safe for concurrent reads.
type Cluster struct {
	mu      sync.RWMutex
	id      uint64
	localID uint64
	members map[uint64]*Member
	removed map[uint64]bool
	version string // cluster version, "" until decided
	// maxLearners bounds the learners allowed (--max-learners).
	maxLearners int
	// localLearner mirrors whether the local member is a learner, for the
	// API layer's per-request check without taking mu.
	localLearner atomic.Bool
}

// NewCluster returns an empty cluster with the given IDs.
func NewCluster(id, localID uint64, maxLearners int) *Cluster {
	return &Cluster{id: id, localID: localID, members: map[uint64]*Member{}, removed: map[uint64]bool{}, maxLearners: maxLearners}
}

// Restore replaces the member set with one loaded from disk.
func (c *Cluster) Restore(members []*Member, removed []uint64, version string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members = map[uint64]*Member{}
	for _, m := range members {
		c.members[m.ID] = m.Clone()
	}
	c.removed = map[uint64]bool{}
	for _, id := range removed {
		c.removed[id] = true
	}
	c.version = version
	c.noteLocalLocked()
}

// SetMaxLearners sets the most learners a conf change may leave in the
// cluster (--max-learners). Call it before any conf change is applied.
func (c *Cluster) SetMaxLearners(n int) {
	c.mu.Lock()
	c.maxLearners = n
	c.mu.Unlock()
}

// LocalIsLearner reports whether the local member is currently a learner.
// It does not lock, so the API layer may ask on every request.
func (c *Cluster) LocalIsLearner() bool { return c.localLearner.Load() }

// noteLocalLocked refreshes localLearner after the member set changed.
func (c *Cluster) noteLocalLocked() {
	m, ok := c.members[c.localID]
	c.localLearner.Store(ok && m.IsLearner)
}

// ID is the cluster ID.
func (c *Cluster) ID() uint64 { return c.id }

// LocalID is this member's ID.
func (c *Cluster) LocalID() uint64 { return c.localID }

// Version is the cluster version ("" when not decided yet).
func (c *Cluster) Version() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.version
}

// Member returns a copy of the member with the ID, or nil.
func (c *Cluster) Member(id uint64) *Member {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if m, ok := c.members[id]; ok {
		return m.Clone()
	}
	return nil
}

// Members returns copies of all members sorted by ID.
func (c *Cluster) Members() []*Member {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, m.Clone())
	}
	slices.SortFunc(out, func(a, b *Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// IsRemoved reports whether the ID was removed from the cluster.
func (c *Cluster) IsRemoved(id uint64) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.removed[id]
}

// ValidateConfChange checks a conf change against the current member set
// with etcd's rules. A failing change is applied as a raft no-op.
func (c *Cluster) ValidateConfChange(cc raftpb.ConfChange) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.removed[cc.NodeID] {
		return ErrIDRemoved
	}
	switch cc.Type {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		ctx, err := UnmarshalContext(cc.Context)
		if err != nil {
			return err
		}
		if ctx.ID != cc.NodeID {
			return fmt.Errorf("%w: member ID %x does not match node ID %x", ErrBadContext, ctx.ID, cc.NodeID)
		}
		if ctx.IsPromote {
			m, ok := c.members[cc.NodeID]
			if !ok {
				return ErrIDNotFound
			}
			if !m.IsLearner {
				return ErrMemberNotLearner
			}
			return nil
		}
		if _, ok := c.members[cc.NodeID]; ok {
			return ErrIDExists
		}
		if c.peerURLTaken(ctx.PeerURLs, 0) {
			return ErrPeerURLExists
		}
		if cc.Type == raftpb.ConfChangeAddLearnerNode && c.learnersLocked() >= c.maxLearners {
			return ErrTooManyLearners
		}
	case raftpb.ConfChangeRemoveNode:
		if _, ok := c.members[cc.NodeID]; !ok {
			return ErrIDNotFound
		}
	case raftpb.ConfChangeUpdateNode:
		if _, ok := c.members[cc.NodeID]; !ok {
			return ErrIDNotFound
		}
		ctx, err := UnmarshalContext(cc.Context)
		if err != nil {
			return err
		}
		if ctx.ID != cc.NodeID {
			return fmt.Errorf("%w: member ID %x does not match node ID %x", ErrBadContext, ctx.ID, cc.NodeID)
		}
		if c.peerURLTaken(ctx.PeerURLs, cc.NodeID) {
			return ErrPeerURLExists
		}
	default:
		return fmt.Errorf("%w: unknown conf change type %v", ErrBadContext, cc.Type)
	}
	return nil
}

func (c *Cluster) peerURLTaken(urls []string, except uint64) bool {
	for id, m := range c.members {
		if id == except {
			continue
		}
		for _, u := range m.PeerURLs {
			if slices.Contains(urls, u) {
				return true
			}
		}
	}
	return false
}

func (c *Cluster) learnersLocked() int {
	n := 0
	for _, m := range c.members {
		if m.IsLearner {
			n++
		}
	}
	return n
}

// ApplyConfChange applies a validated conf change, persisting it through p
// when p is non-nil (nil while replaying entries the backend already holds).
func (c *Cluster) ApplyConfChange(cc raftpb.ConfChange, p Persister) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.noteLocalLocked()
	switch cc.Type {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		ctx, err := UnmarshalContext(cc.Context)
		if err != nil {
			return err
		}
		var m *Member
		if ctx.IsPromote {
			m = c.members[cc.NodeID].Clone()
			m.IsLearner = false
		} else {
			m = ctx.Member.Clone()
			m.IsLearner = cc.Type == raftpb.ConfChangeAddLearnerNode
		}
		c.members[m.ID] = m
		if p != nil {
			return p.SaveMember(m)
		}
	case raftpb.ConfChangeRemoveNode:
		delete(c.members, cc.NodeID)
		c.removed[cc.NodeID] = true
		if p != nil {
			return p.RemoveMember(cc.NodeID)
		}
	case raftpb.ConfChangeUpdateNode:
		ctx, err := UnmarshalContext(cc.Context)
		if err != nil {
			return err
		}
		m := c.members[cc.NodeID].Clone()
		m.PeerURLs = slices.Clone(ctx.PeerURLs)
		c.members[m.ID] = m
		if p != nil {
			return p.SaveMember(m)
		}
	}
	return nil
}

// SetAttributes records the attributes a member published. It reports false
// for an ID that is neither a member nor removed (etcd treats that as a
// broken invariant); attributes of removed members are ignored.
func (c *Cluster) SetAttributes(id uint64, attr Attributes, p Persister) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.members[id]
	if !ok {
		return c.removed[id], nil
	}
	m = m.Clone()
	m.Attributes = Attributes{Name: attr.Name, ClientURLs: slices.Clone(attr.ClientURLs)}
	c.members[id] = m
	if p != nil {
		return true, p.SaveMember(m)
	}
	return true, nil
}

// SetVersion records the cluster version.
func (c *Cluster) SetVersion(v string, p Persister) error {
	c.mu.Lock()
	c.version = v
	c.mu.Unlock()
	if p != nil {
		return p.SaveClusterVersion(v)
	}
	return nil
}
