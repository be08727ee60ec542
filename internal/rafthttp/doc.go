// Package rafthttp carries raft messages between cluster members over
// etcd 3.6's peer protocol (docs: /work/shared/spec/etcd-peer-protocol.md,
// sections 1-4 and 6), so that etcd and cairn members form one cluster.
//
// # Channels
//
// For every other member (a peer, added with AddPeer) the transport runs:
//
//   - two stream readers: each dials GET /raft/stream/{message,msgapp}/<our
//     hex ID> on the peer and reads what the peer writes to us, redialling
//     at most every 100 ms. Messages go to two receive queues (proposals
//     apart, 4096 each) that two goroutines drain into Raft.Process.
//   - two stream writers: the peer dials the same paths on us; the handler
//     passes the response body to the writer of its type, which writes our
//     messages to it from a 4096-message queue, flushing when the queue
//     drains, and sends a link heartbeat every 5 s / 3 so the reader's 5 s
//     read deadline never fires on an idle stream.
//   - a pipeline: four workers POSTing one message per request to /raft
//     from a 64-message queue; used before the streams are up and while
//     they are down.
//
// Send picks, per message: MsgApp → the msgappv2 stream if attached, else
// the message stream if attached, else the pipeline; others → the message
// stream, else the pipeline. Queues never block the caller: a full queue
// drops the message and raft is told the peer is unreachable.
//
// A sender we do not know that contacts us with X-PeerURLs becomes a
// "remote": a pipeline only, for a member that joins before we applied its
// addition. AddPeer replaces it.
//
// # Wire formats
//
// codec.go: the message stream (8-byte big-endian length + raftpb.Message,
// at most 512 MiB); msgappv2.go: the msgapp stream, whose AppEntries
// records rely on (term, index) state kept identically at both ends.
//
// # Peer status
//
// Each peer is active or inactive with the time it became active (spec
// 6.2), shared by its streams and pipeline: a stream attached or dialled,
// or a pipeline 204, activates it; a failed dial, read, write, heartbeat or
// POST deactivates it. ActiveSince exposes it for the server's
// reconfiguration checks.
//
// # Threading
//
// Every exported method is safe for concurrent use. Goroutines: per peer,
// two readers, two writers, four pipeline workers and two delivery
// goroutines; per remote, four pipeline workers; one reporter that makes
// the ReportUnreachable/ReportSnapshot calls, so that Send (called from
// raftnode's loop, which also serves those reports) never calls into Raft.
// A stream handler blocks on its HTTP server goroutine for as long as the
// writer uses its response. RemovePeer and Stop stop and wait for the
// goroutines they own; Raft.Process must return once its ctx is done.
//
// # Not yet
//
// cairn cannot ship or install database snapshots yet: Send refuses a
// MsgSnap (SnapshotFailure + unreachable, so raft keeps probing and sends
// entries once the follower can take them, or retries the snapshot), and
// /raft/snapshot answers 500. There is no prober (spec 6.1: it only feeds
// metrics and clock-drift warnings), no metrics, and no unix-socket peer
// URLs.
package rafthttp
