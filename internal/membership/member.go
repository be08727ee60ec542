// Package membership holds the cluster's member set: member and cluster ID
// derivation, the member records in etcd's JSON shapes, and the validation of
// configuration changes.
//
// The package is a synchronous library: the apply goroutine mutates a Cluster,
// API goroutines read it. Persistence goes through the Persister the caller
// supplies, inside the caller's backend transaction, so the member set on disk
// always matches the consistent index written with it.
package membership

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// RaftAttributes are the member fields that go through raft conf changes.
type RaftAttributes struct {
	PeerURLs  []string `json:"peerURLs"`
	IsLearner bool     `json:"isLearner,omitempty"`
}

// Attributes are the member fields a member publishes about itself once it
// has started (ClusterMemberAttrSet).
type Attributes struct {
	Name       string   `json:"name,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
}

// Member is one member of the cluster. Its JSON form is exactly etcd's, as
// stored in the backend's members bucket and carried in conf-change contexts
// (ID as a decimal number).
type Member struct {
	ID uint64 `json:"id"`
	RaftAttributes
	Attributes
}

// NewMember builds a member whose ID is derived from its peer URLs and the
// cluster token (and the time, for members added at runtime; nil at bootstrap).
func NewMember(name string, peerURLs []string, token string, now *time.Time) *Member {
	urls := slices.Clone(peerURLs)
	slices.Sort(urls)
	return &Member{
		ID:             ComputeMemberID(urls, token, now),
		RaftAttributes: RaftAttributes{PeerURLs: urls},
		Attributes:     Attributes{Name: name},
	}
}

// IsStarted reports whether the member has published its attributes.
func (m *Member) IsStarted() bool { return m.Name != "" }

// Clone returns a deep copy.
func (m *Member) Clone() *Member {
	c := *m
	c.PeerURLs = slices.Clone(m.PeerURLs)
	c.ClientURLs = slices.Clone(m.ClientURLs)
	return &c
}

// ConfChangeContext is the JSON carried in a raft ConfChange's Context.
type ConfChangeContext struct {
	Member
	IsPromote bool `json:"isPromote,omitempty"`
}

// MarshalContext renders the context for a conf change about m.
func MarshalContext(m *Member, promote bool) ([]byte, error) {
	b, err := json.Marshal(ConfChangeContext{Member: *m, IsPromote: promote})
	if err != nil {
		return nil, fmt.Errorf("marshal conf change context: %w", err)
	}
	return b, nil
}

// UnmarshalContext parses a conf-change context.
func UnmarshalContext(b []byte) (*ConfChangeContext, error) {
	var c ConfChangeContext
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadContext, err)
	}
	return &c, nil
}

// MarshalMember renders the members-bucket value of m.
func MarshalMember(m *Member) ([]byte, error) { return json.Marshal(m) }

// UnmarshalMember parses a members-bucket value.
func UnmarshalMember(b []byte) (*Member, error) {
	var m Member
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("unmarshal member: %w", err)
	}
	return &m, nil
}
