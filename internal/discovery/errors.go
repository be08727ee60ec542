package discovery

import (
	"errors"
	"fmt"
)

// Errors of the discovery protocols, with etcd's texts. The v2 and v3
// protocols share them except for the invalid-URL text, which differs in
// etcd too.
var (
	ErrSizeNotFound         = errors.New("discovery: size key not found")
	ErrBadSizeKey           = errors.New("discovery: size key is bad")
	ErrFullCluster          = errors.New("discovery: cluster is full")
	ErrDuplicateID          = errors.New("discovery: found duplicate id")
	ErrDuplicateName        = errors.New("discovery: found duplicate name")
	ErrBadDiscoveryEndpoint = errors.New("discovery: bad discovery endpoint")
	ErrInvalidURL           = errors.New("discovery: invalid URL")      // v2
	ErrInvalidPeerURL       = errors.New("discovery: invalid peer URL") // v3
)

// Error is a failed registration with a discovery service; its text is
// etcd's "failed to join discovery cluster (<cause>)".
type Error struct{ Err error }

func (e *Error) Error() string { return fmt.Sprintf("failed to join discovery cluster (%v)", e.Err) }

func (e *Error) Unwrap() error { return e.Err }
