package membership

import "errors"

// Errors returned by conf-change validation. Their texts are etcd's, which
// clients and operators see.
var (
	// ErrIDRemoved is returned when a change names a removed member.
	ErrIDRemoved = errors.New("membership: ID removed")
	// ErrIDExists is returned when adding a member whose ID is taken.
	ErrIDExists = errors.New("membership: ID exists")
	// ErrIDNotFound is returned when a change names an unknown member.
	ErrIDNotFound = errors.New("membership: ID not found")
	// ErrPeerURLExists is returned when a peer URL is already used.
	ErrPeerURLExists = errors.New("membership: peerURL exists")
	// ErrTooManyLearners is returned when adding a learner past --max-learners.
	ErrTooManyLearners = errors.New("membership: too many learner members in cluster")
	// ErrMemberNotLearner is returned when promoting a voter.
	ErrMemberNotLearner = errors.New("membership: can only promote a learner member")
	// ErrBadContext is returned for a conf-change context that is not etcd's
	// member JSON. Applying such an entry is a broken invariant.
	ErrBadContext = errors.New("membership: malformed conf change context")
)
