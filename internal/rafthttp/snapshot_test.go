package rafthttp

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// fakeDB is a database image for SendSnapshot.
type fakeDB struct {
	data   []byte
	mu     sync.Mutex
	closed bool
}

func (d *fakeDB) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(d.data)
	return int64(n), err
}
func (d *fakeDB) Size() int64 { return int64(len(d.data)) }
func (d *fakeDB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}
func (d *fakeDB) isClosed() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.closed }

// dbSaver records what /raft/snapshot saved.
type dbSaver struct {
	mu    sync.Mutex
	saved map[uint64][]byte
	err   error
}

func (s *dbSaver) save(r io.Reader, index uint64) (int64, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return int64(len(b)), err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	s.saved[index] = b
	return int64(len(b)), nil
}

func (s *dbSaver) get(index uint64) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saved[index]
}

func snapMsg(index uint64) raftpb.Message {
	return raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 2, Term: 3,
		Snapshot: &raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: index, Term: 3, ConfState: raftpb.ConfState{Voters: []uint64{1, 2}}}, Data: []byte(`{"Root":{}}`)}}
}

// A snapshot travels with its database on a POST of its own: the receiver
// saves the database first, then hands the message to raft; the sender
// closes the database, reports SnapshotFinish and calls done.
func TestSendSnapshot(t *testing.T) {
	saver := &dbSaver{saved: map[uint64][]byte{}}
	a := newNode(t, 1, cluster)
	b := newNode(t, 2, cluster, withConfig(func(c *Config) { c.SaveSnapshotDB = saver.save }))
	connect(a, b)
	db := &fakeDB{data: bytes.Repeat([]byte("bolt"), 1<<18)} // 1 MiB
	done := make(chan bool, 1)
	a.tr.SendSnapshot(snapMsg(42), db, func(ok bool) { done <- ok })
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("snapshot upload failed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("snapshot upload never ended")
	}
	if !db.isClosed() {
		t.Error("database not closed after the upload")
	}
	if got := saver.get(42); !bytes.Equal(got, db.data) {
		t.Fatalf("saved %d bytes, want %d", len(got), len(db.data))
	}
	waitFor(t, 5*time.Second, "MsgSnap in raft", func() bool {
		for _, m := range b.raft.received() {
			if m.Type == raftpb.MsgSnap && m.Snapshot.Metadata.Index == 42 {
				return true
			}
		}
		return false
	})
	waitFor(t, 5*time.Second, "SnapshotFinish", func() bool {
		a.raft.mu.Lock()
		defer a.raft.mu.Unlock()
		return len(a.raft.snaps) == 1 && a.raft.snaps[0] == snapReport{2, raft.SnapshotFinish}
	})
}

// A receiver that cannot save the database answers 500 with etcd's text;
// raft never sees the message and the sender reports SnapshotFailure.
func TestSendSnapshotRefused(t *testing.T) {
	saver := &dbSaver{saved: map[uint64][]byte{}, err: errors.New("disk full")}
	a := newNode(t, 1, cluster)
	b := newNode(t, 2, cluster, withConfig(func(c *Config) { c.SaveSnapshotDB = saver.save }))
	connect(a, b)
	done := make(chan bool, 1)
	a.tr.SendSnapshot(snapMsg(7), &fakeDB{data: []byte("db")}, func(ok bool) { done <- ok })
	if ok := <-done; ok {
		t.Fatal("a refused upload reported success")
	}
	for _, m := range b.raft.received() {
		if m.Type == raftpb.MsgSnap {
			t.Fatal("raft got a snapshot whose database was not saved")
		}
	}
	waitFor(t, 5*time.Second, "SnapshotFailure", func() bool {
		a.raft.mu.Lock()
		defer a.raft.mu.Unlock()
		return len(a.raft.snaps) == 1 && a.raft.snaps[0] == snapReport{2, raft.SnapshotFailure}
	})
	if !logged(b.logs, "failed to save KV snapshot") {
		t.Error("no log line for the failed save")
	}
}

// To an unknown member, or after Stop, the snapshot fails at once and the
// database is closed.
func TestSendSnapshotNoPeer(t *testing.T) {
	a := newNode(t, 1, cluster)
	db := &fakeDB{data: []byte("db")}
	var ok *bool
	a.tr.SendSnapshot(snapMsg(9), db, func(v bool) { ok = &v })
	if ok == nil || *ok || !db.isClosed() {
		t.Fatalf("unknown peer: done %v, closed %v", ok, db.isClosed())
	}
}
