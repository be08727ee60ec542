package rafthttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// Body limits of received requests.
const (
	// maxPipelineBytes caps a pipeline POST body (etcd reads without a
	// total cap; cairn uses the stream decoder's limit).
	maxPipelineBytes = maxMessageBytes
	// maxSnapshotEnvelope caps the message before a snapshot's db bytes
	// (etcd's snapshotLimitByte).
	maxSnapshotEnvelope = 64 << 20
)

// snapshotRefusal is the 500 body /raft/snapshot answers with until cairn
// can install a database snapshot.
const snapshotRefusal = "cairn cannot install snapshots yet"

// Handler serves the raft part of the peer listener:
//
//	POST /raft                                pipeline: one raftpb.Message
//	GET  /raft/stream/{message,msgapp}/<hex>  streams the peer reads
//	POST /raft/snapshot                       refused: 500 (see snapshotRefusal)
//	any  /raft/probing                        {"OK":true,"Now":"<RFC 3339 ns>"}
//
// Every other /raft/... path answers 404 "404 page not found". The caller
// mounts it for "/raft" and "/raft/" next to /members, /version and the
// rest of the peer routes. Handlers run on the HTTP server's goroutines; a
// stream request holds its goroutine for the stream's lifetime.
func (t *Transport) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/raft", t.servePipeline)
	mux.HandleFunc("/raft/stream/", t.serveStream)
	mux.HandleFunc("/raft/snapshot", t.serveSnapshot)
	mux.HandleFunc("/raft/probing", serveProbing)
	return mux
}

// checkCompatible applies spec 2.3 to r: versions, then cluster ID. On a
// refusal it answers 412 and reports false.
func (t *Transport) checkCompatible(w http.ResponseWriter, r *http.Request) bool {
	from := r.Header.Get("X-Server-From")
	vc := checkVersions(r.Header, t.serverVer, t.minVer)
	if vc.err != nil {
		t.lg.Warn("failed version compatibility check",
			zap.String("local-member-id", t.localHex),
			zap.String("local-member-cluster-id", t.clusterHex),
			zap.String("local-member-server-version", t.cfg.ServerVersion),
			zap.String("local-member-server-minimum-cluster-version", t.cfg.MinClusterVersion),
			zap.String("remote-peer-server-name", from),
			zap.String("remote-peer-server-version", r.Header.Get("X-Server-Version")),
			zap.String("remote-peer-server-minimum-cluster-version", r.Header.Get("X-Min-Cluster-Version")),
			zap.Error(vc.err))
		http.Error(w, ErrIncompatibleVersion.Error(), http.StatusPreconditionFailed)
		return false
	}
	if got := r.Header.Get("X-Etcd-Cluster-ID"); got != t.clusterHex {
		t.mismatchLog.log("received/"+from+"/"+got, func(suppressed int) {
			t.lg.Warn("request cluster ID mismatch",
				zap.String("local-member-id", t.localHex),
				zap.String("local-member-cluster-id", t.clusterHex),
				zap.String("local-member-server-version", t.cfg.ServerVersion),
				zap.String("remote-peer-server-name", from),
				zap.String("remote-peer-cluster-id", got),
				zap.String("remote-peer-server-version", r.Header.Get("X-Server-Version")),
				zap.String("remote-peer-urls", r.Header.Get("X-PeerURLs")),
				zap.String("remote-addr", r.RemoteAddr),
				zap.String("likely-causes", likelyMismatchCauses),
				zap.Int("suppressed-repeats", suppressed))
		})
		http.Error(w, ErrClusterIDMismatch.Error(), http.StatusPreconditionFailed)
		return false
	}
	return true
}

// addRemoteFromRequest registers the sender of a pipeline or snapshot
// request as a remote when it sent its peer URLs and we do not know it.
func (t *Transport) addRemoteFromRequest(r *http.Request) {
	from, err := types.IDFromString(r.Header.Get("X-Server-From"))
	if err != nil {
		return
	}
	if urls := r.Header.Get("X-PeerURLs"); urls != "" {
		t.addRemote(uint64(from), strings.Split(urls, ","))
	}
}

func (t *Transport) servePipeline(w http.ResponseWriter, r *http.Request) {
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

	b, err := io.ReadAll(io.LimitReader(r.Body, maxPipelineBytes+1))
	if err == nil && len(b) > maxPipelineBytes {
		err = fmt.Errorf("body above %d bytes: %w", maxPipelineBytes, ErrMessageTooLarge)
	}
	if err != nil {
		t.lg.Warn("failed to read Raft message", zap.String("local-member-id", t.localHex), zap.Error(err))
		http.Error(w, "error reading raft message", http.StatusBadRequest)
		return
	}
	var m raftpb.Message
	if err := m.Unmarshal(b); err != nil {
		t.lg.Warn("failed to unmarshal Raft message", zap.String("local-member-id", t.localHex), zap.Error(err))
		http.Error(w, "error unmarshalling raft message", http.StatusBadRequest)
		return
	}
	if err := t.process(t.ctx, m); err != nil {
		if errors.Is(err, errFromRemoved) {
			// The intended etcd answer (spec 2.6); the sender stops.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"message":"cannot process message from removed member"}`))
			return
		}
		t.lg.Warn("failed to process Raft message", zap.String("local-member-id", t.localHex), zap.Error(err))
		// Never 403 for a To mismatch: a healthy etcd member would stop.
		http.Error(w, "error processing raft message", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Refusals of process, before a message reaches raft.
var (
	errFromRemoved  = errors.New("cannot process message from removed member")
	errToMismatch   = errors.New("cannot process message to mismatch member")
	errSnapReceived = errors.New("a snapshot message must come with its database on /raft/snapshot")
)

// process checks a received message and steps it into raft (spec 2.6):
// messages from removed members, to another member, link heartbeats and
// snapshots are refused.
func (t *Transport) process(ctx context.Context, m raftpb.Message) error {
	if err := t.check(m); err != nil {
		return err
	}
	if m.Type == raftpb.MsgSnap {
		t.lg.Warn("rejected snapshot message outside /raft/snapshot",
			zap.String("local-member-id", t.localHex),
			zap.String("from", types.ID(m.From).String()))
		return errSnapReceived
	}
	return t.cfg.Raft.Process(ctx, m)
}

// check refuses messages from removed members and to another member.
func (t *Transport) check(m raftpb.Message) error {
	if t.cfg.Raft.IsIDRemoved(m.From) {
		t.lg.Warn("rejected Raft message from removed member",
			zap.String("local-member-id", t.localHex),
			zap.String("removed-member-id", types.ID(m.From).String()))
		return errFromRemoved
	}
	if m.To != t.cfg.LocalID {
		t.lg.Warn("rejected Raft message to mismatch member",
			zap.String("local-member-id", t.localHex),
			zap.String("mismatch-member-id", types.ID(m.To).String()))
		return errToMismatch
	}
	return nil
}

func (t *Transport) serveStream(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Server-Version", t.cfg.ServerVersion)
	w.Header().Set("X-Etcd-Cluster-ID", t.clusterHex)
	if !t.checkCompatible(w, r) {
		return
	}

	var typ streamType
	switch path.Dir(r.URL.Path) {
	case streamMsgAppV2.path():
		typ = streamMsgAppV2
	case streamMessage.path():
		typ = streamMessage
	default:
		http.Error(w, "invalid path", http.StatusNotFound)
		return
	}
	fromHex := path.Base(r.URL.Path)
	from, err := types.IDFromString(fromHex)
	if err != nil {
		t.lg.Warn("failed to parse path into ID",
			zap.String("local-member-id", t.localHex), zap.String("path", fromHex), zap.Error(err))
		http.Error(w, "invalid from", http.StatusNotFound)
		return
	}
	if t.cfg.Raft.IsIDRemoved(uint64(from)) {
		t.lg.Warn("rejected stream from remote peer because it was removed",
			zap.String("local-member-id", t.localHex), zap.String("remote-peer-id-from", from.String()))
		http.Error(w, "removed member", http.StatusGone)
		return
	}
	p := t.peer(uint64(from))
	if p == nil {
		if urls := r.Header.Get("X-PeerURLs"); urls != "" {
			t.addRemote(uint64(from), strings.Split(urls, ","))
		}
		t.lg.Warn("failed to find remote peer in cluster",
			zap.String("local-member-id", t.localHex),
			zap.String("remote-peer-id-from", from.String()),
			zap.String("cluster-id", t.clusterHex))
		http.Error(w, "error sender not found", http.StatusNotFound)
		return
	}
	if to := r.Header.Get("X-Raft-To"); to != t.localHex {
		t.lg.Warn("ignored streaming request; ID mismatch",
			zap.String("local-member-id", t.localHex),
			zap.String("remote-peer-id-header", to),
			zap.String("remote-peer-id-from", from.String()),
			zap.String("cluster-id", t.clusterHex))
		http.Error(w, "to field mismatch", http.StatusPreconditionFailed)
		return
	}

	w.WriteHeader(http.StatusOK)
	c := newOutgoingConn(typ, w)
	if err := c.rc.Flush(); err != nil {
		return
	}
	if !p.attach(c) {
		return // peer removed meanwhile
	}
	<-c.released
}

// serveProbing answers etcd's prober: any method, JSON and a newline.
func serveProbing(w http.ResponseWriter, _ *http.Request) {
	_ = json.NewEncoder(w).Encode(struct {
		OK  bool
		Now time.Time
	}{OK: true, Now: time.Now()})
}
