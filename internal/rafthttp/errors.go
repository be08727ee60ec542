package rafthttp

import "errors"

// Sentinel errors. Callers compare with errors.Is: the transport wraps them
// with the operation and the peer involved.
var (
	// ErrIncompatibleVersion is returned when a peer's X-Server-Version or
	// X-Min-Cluster-Version lies outside what this member accepts, or when
	// a peer refused our request for that reason (412 "incompatible
	// version"). Its text is part of the wire protocol.
	ErrIncompatibleVersion = errors.New("incompatible version")
	// ErrClusterIDMismatch is returned when a request's X-Etcd-Cluster-ID
	// differs from ours, or when a peer refused our request for that
	// reason (412 "cluster ID mismatch"). Its text is part of the wire
	// protocol.
	ErrClusterIDMismatch = errors.New("cluster ID mismatch")
	// ErrMemberRemoved is reported through Config.OnRemoved when a peer
	// says this member was removed from the cluster (410 on a stream dial,
	// 403 on a pipeline POST). The member must stop; its data dir cannot be
	// reused.
	ErrMemberRemoved = errors.New("the member has been permanently removed from the cluster")
	// ErrUnsupportedStream is returned by a stream dial whose answer came
	// from a peer too old for (or silent about) the stream type. It does
	// not count as a failure of the peer.
	ErrUnsupportedStream = errors.New("unsupported stream type")
	// ErrMessageTooLarge is returned by the decoders for a length prefix
	// above the limit (512 MiB).
	ErrMessageTooLarge = errors.New("rafthttp: error limit exceeded")
	// ErrStopped is returned by operations on a stopped transport.
	ErrStopped = errors.New("rafthttp: transport stopped")
	// ErrSnapshotUnsupported explains why a MsgSnap is refused in both
	// directions: cairn cannot yet ship or install a database snapshot.
	ErrSnapshotUnsupported = errors.New("cairn cannot send or install database snapshots yet")
)

// errAborted is the write error of a stream connection the transport
// aborted (writer stopping).
var errAborted = errors.New("rafthttp: stream connection aborted")
