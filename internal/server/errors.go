package server

import (
	"errors"

	"go.etcd.io/raft/v3"
)

// Errors returned by the server. The API layer translates them to etcd's
// gRPC errors (rpctypes) once, at the edge.
var (
	// ErrStopped is returned once the server is stopping.
	ErrStopped = errors.New("server: stopped")
	// ErrTimeout is returned when a request was not applied in time.
	ErrTimeout = errors.New("server: request timed out")
	// ErrTimeoutLeaderFail is returned when a request timed out and the
	// leader was lost meanwhile.
	ErrTimeoutLeaderFail = errors.New("server: request timed out, possibly due to previous leader failure")
	// ErrNoLeader is returned when there is no leader to take a proposal.
	ErrNoLeader = errors.New("server: no leader")
	// ErrCanceled is returned when the client canceled the request.
	ErrCanceled = errors.New("server: request cancelled")
	// ErrRequestTooLarge is returned for a proposal over --max-request-bytes.
	ErrRequestTooLarge = errors.New("server: request is too large")
	// ErrTooManyRequests is returned when apply lags commit too far.
	ErrTooManyRequests = errors.New("server: too many requests")
	// ErrNoSpace is returned for writes while the NOSPACE alarm is active.
	ErrNoSpace = errors.New("server: database space exceeded")
	// ErrNoDiskSpace is returned for writes while the data dir's disk is
	// too full to take them safely.
	ErrNoDiskSpace = errors.New("cairn: no space left on the data dir's disk; writes are refused until space is freed")
	// ErrNotSupported is returned for requests cairn does not serve yet.
	ErrNotSupported = errors.New("server: not supported yet")
)

// proposalDropped translates raft refusing a proposal (no leader, or a
// leadership transfer under way) into the client's error.
func proposalDropped(err error) error {
	if errors.Is(err, raft.ErrProposalDropped) {
		return ErrNoLeader
	}
	return err
}
