// Package wal is cairn's write-ahead log, byte-compatible with etcd 3.6's:
// cairn starts on a member/wal directory written by etcd, and etcd's tools
// (etcd-dump-logs, etcdutl) read the ones cairn writes.
//
// # Files
//
// A WAL is a directory of segment files named %016x-%016x.wal: a sequence
// number counting up from 0 and the raft index of the first entry the segment
// may hold. Each segment is preallocated to 64,000,000 bytes (the unwritten
// part reads as zeros); the next one is prepared ahead as 0.tmp. Every
// segment file the WAL uses is locked with an open-file-description lock
// (fileutil.LockFile, as etcd), so two processes cannot append to one WAL.
//
// # Records
//
// A segment is a sequence of frames. A frame is an 8-byte little-endian
// length field, then a walpb.Record protobuf {type int64 = 1, crc uint32 = 2,
// data bytes = 3}, then zero padding to a multiple of 8 bytes. The length
// field's low 56 bits hold the record length; when padding is present its top
// byte is 0x80 | padding. A zero length field marks the end of the written
// part of a segment.
//
// Record types: metadata (1, opaque bytes: the server stores
// etcdserverpb.Metadata{NodeID, ClusterID}), entry (2, raftpb.Entry), state (3,
// raftpb.HardState), crc (4, no data), snapshot (5, walpb.Snapshot {index = 1,
// term = 2, conf_state = 3})}.
//
// The crc field of every non-crc record is CRC-32 Castagnoli over the data of
// all records so far, chained: each record continues the previous value. Each
// segment starts with a crc record carrying the chain value the previous
// segment ended with, then the metadata record, then (after the first) the
// last HardState. The first segment also holds the zero snapshot record.
//
// # Reading
//
// Open (or OpenForRead) selects the segments from the one holding a given
// snapshot to the end; ReadAll replays them (see its documentation). A crash
// can leave a torn record at the end of the last segment: ReadAll then fails
// with an error wrapping ErrTornWrite and io.ErrUnexpectedEOF, Repair cuts the
// torn record off, and the server opens again. Any other damage is a
// *CorruptionError naming the segment file, and the WAL refuses to open.
//
// # The Save contract
//
// The raft Ready loop calls Save once per Ready with all of Ready.Entries and
// Ready.HardState.
//
//  1. Threading: every method is safe for concurrent use; they serialise on
//     one mutex. Save must not be called concurrently with itself for the
//     ordering below to mean anything, so only the Ready loop calls it.
//  2. Order: the entries are appended in slice order, then the HardState (when
//     not empty). An entry whose index is at or below one already saved
//     replaces it and everything after it on replay.
//  3. Durability: when Save returns nil, everything written so far is synced
//     to disk with a single fdatasync if raft.MustSync(st, previous state,
//     len(ents)) holds, i.e. when there are entries or the term or vote
//     changed. A HardState that only moves the commit index is written but
//     not synced, as in etcd (a lost commit index is re-learned from the
//     leader). Messages that depend on the saved data may be sent only after
//     Save returns.
//  4. Cost: one write system call per Save (all records are encoded into one
//     reused buffer), at most one fdatasync, and no allocation in steady
//     state. When the tail ends past the segment size, the same Save cuts to
//     the prepared segment (two more fdatasyncs and a directory fsync).
//  5. Ownership: Save reads st and ents and keeps no reference to them.
//  6. Errors: a write, sync or cut failure (for example ENOSPC) is returned,
//     never panicked, and from then on every append returns ErrFailed. A
//     partially written record is truncated away when possible; otherwise it
//     is a torn tail that Repair removes at the next start.
//
// # Errors
//
// Errors wrap one of the sentinels in errors.go; corruption is marked with
// *CorruptionError (see IsCorruption).
package wal
