package rafthttp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// SnapshotDB is the database image a snapshot carries: written once, then
// closed (after which no method may be called).
type SnapshotDB interface {
	io.WriterTo
	Size() int64
	Close() error
}

// snapshotSource names the snapshot channel in "peer became inactive" lines.
const snapshotSource = "snapshot"

// SendSnapshot sends MsgSnap m followed by db to its member on a POST of
// its own (spec 5.2: 8-byte length, the message, then the raw database to
// the end of the body), so a large database never delays other messages.
// It returns at once; when the upload ends, db is closed, raft hears
// SnapshotFinish or SnapshotFailure (and unreachable on failure), and done
// is called with the outcome. done may be nil.
func (t *Transport) SendSnapshot(m raftpb.Message, db SnapshotDB, done func(ok bool)) {
	finish := func(ok bool) {
		if done != nil {
			done(ok)
		}
	}
	p := t.peer(m.To)
	t.mu.RLock()
	stopped := t.stopped
	if !stopped && p != nil {
		t.snaps.Add(1)
	}
	t.mu.RUnlock()
	if stopped || p == nil || m.Snapshot == nil {
		db.Close()
		t.rep.snapshot(m.To, raft.SnapshotFailure)
		finish(false)
		return
	}
	go func() {
		defer t.snaps.Done()
		start := time.Now()
		index, size := m.Snapshot.Metadata.Index, db.Size() // db is closed below
		t.lg.Info("sending database snapshot",
			zap.String("remote-peer-id", types.ID(m.To).String()),
			zap.Uint64("snapshot-index", index), zap.Int64("bytes", size))
		err := t.postSnapshot(p, m, db)
		db.Close()
		if err != nil {
			t.lg.Warn("failed to send database snapshot",
				zap.String("remote-peer-id", types.ID(m.To).String()),
				zap.Uint64("snapshot-index", index), zap.Error(err))
			if t.ctx.Err() == nil {
				p.status.deactivate(failure{source: snapshotSource, action: "post"}, err.Error())
			}
			if errors.Is(err, ErrMemberRemoved) {
				t.memberRemoved(err)
			}
			t.rep.unreachable(m.To)
			t.rep.snapshot(m.To, raft.SnapshotFailure)
			finish(false)
			return
		}
		p.status.activate()
		t.lg.Info("sent database snapshot",
			zap.String("remote-peer-id", types.ID(m.To).String()),
			zap.Uint64("snapshot-index", index), zap.Int64("bytes", size),
			zap.Duration("took", time.Since(start)))
		t.rep.snapshot(m.To, raft.SnapshotFinish)
		finish(true)
	}()
}

// postSnapshot streams the envelope and the database through a pipe, so
// the database is never held in memory.
func (t *Transport) postSnapshot(p *peer, m raftpb.Message, db SnapshotDB) error {
	data, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("marshal snapshot message: %w", err)
	}
	pr, pw := io.Pipe()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		var hdr [8]byte
		binary.BigEndian.PutUint64(hdr[:], uint64(len(data)))
		_, err := pw.Write(hdr[:])
		if err == nil {
			_, err = pw.Write(data)
		}
		if err == nil {
			_, err = db.WriteTo(pw)
		}
		pw.CloseWithError(err)
	}()
	// Whatever happens to the request, the writer must end before db is
	// closed.
	defer func() {
		pr.CloseWithError(errors.New("snapshot upload ended"))
		<-wrote
	}()
	u := p.picker.pick()
	target := u
	target.Path = "/raft/snapshot"
	req, err := http.NewRequestWithContext(t.ctx, http.MethodPost, target.String(), pr)
	if err != nil {
		return fmt.Errorf("snapshot request to %s: %w", u.Redacted(), err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	t.setRequestHeaders(req.Header)
	resp, err := t.pipelineRT.RoundTrip(req)
	if err != nil {
		p.picker.unreachable(u)
		return err
	}
	if err := t.checkPostResponse(p.id, resp); err != nil {
		p.picker.unreachable(u)
		return err
	}
	return nil
}

func (t *Transport) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Etcd-Cluster-ID", t.clusterHex)
	if !t.checkCompatible(w, r) {
		return
	}
	t.addRemoteFromRequest(r)

	dec := &messageDecoder{r: r.Body, limit: maxSnapshotEnvelope}
	m, err := dec.decode()
	if err != nil {
		t.lg.Warn("failed to decode Raft message", zap.String("local-member-id", t.localHex), zap.Error(err))
		http.Error(w, fmt.Sprintf("failed to decode raft message (%v)", err), http.StatusBadRequest)
		return
	}
	if m.Type != raftpb.MsgSnap || m.Snapshot == nil {
		t.lg.Warn("unexpected Raft message type",
			zap.String("local-member-id", t.localHex),
			zap.String("remote-snapshot-sender-id", types.ID(m.From).String()),
			zap.String("message-type", m.Type.String()))
		http.Error(w, "wrong raft message type", http.StatusBadRequest)
		return
	}
	if t.cfg.SaveSnapshotDB == nil {
		// The db bytes that follow are left unread: the server closes the
		// connection, and the leader's raft retries later.
		t.lg.Warn("refused database snapshot: "+snapshotRefusal,
			zap.String("local-member-id", t.localHex),
			zap.String("remote-snapshot-sender-id", types.ID(m.From).String()),
			zap.Uint64("incoming-snapshot-index", m.Snapshot.Metadata.Index))
		http.Error(w, snapshotRefusal, http.StatusInternalServerError)
		return
	}
	// Refuse before taking the database, not after.
	if err := t.check(m); err != nil {
		http.Error(w, fmt.Sprintf("failed to process raft message (%v)", err), http.StatusInternalServerError)
		return
	}
	index := m.Snapshot.Metadata.Index
	t.lg.Info("receiving database snapshot",
		zap.String("local-member-id", t.localHex),
		zap.String("remote-snapshot-sender-id", types.ID(m.From).String()),
		zap.Uint64("incoming-snapshot-index", index))
	n, err := t.cfg.SaveSnapshotDB(r.Body, index)
	if err != nil {
		t.lg.Warn("failed to save KV snapshot", zap.String("local-member-id", t.localHex), zap.Uint64("incoming-snapshot-index", index), zap.Error(err))
		http.Error(w, fmt.Sprintf("failed to save KV snapshot (%v)", err), http.StatusInternalServerError)
		return
	}
	t.lg.Info("received and saved database snapshot",
		zap.String("local-member-id", t.localHex),
		zap.String("remote-snapshot-sender-id", types.ID(m.From).String()),
		zap.Uint64("incoming-snapshot-index", index), zap.Int64("incoming-snapshot-size", n))
	if err := t.cfg.Raft.Process(t.ctx, m); err != nil {
		t.lg.Warn("failed to process Raft message", zap.String("local-member-id", t.localHex), zap.Error(err))
		http.Error(w, fmt.Sprintf("failed to process raft message (%v)", err), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
