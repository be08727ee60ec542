package v2http

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/v2store"
)

// watch serves GET wait=true as etcd 3.4 does: an error (401 for an index
// older than the history) is answered like any other; otherwise 200 and
// the headers are flushed at once (X-Etcd-Index: the store index when the
// watch began), then one event, or with stream=true every event, each
// flushed. The handler ends, and the watcher is removed, when the event
// is sent, the client goes away (the request's context), or the store
// drops the watcher (a stream too far behind, a snapshot replacing the
// tree); in the last case the body ends without an event, which clients
// take as "watch again".
func (k *keys) watch(w http.ResponseWriter, r *http.Request, rq *request) {
	wa, err := k.s.V2Store().Watch(rq.path, rq.recursive, rq.stream, rq.waitIndex)
	if err != nil {
		var ve *v2store.Error
		if !errors.As(err, &ve) {
			ve = v2store.NewError(v2store.EcodeRaftInternal, err.Error(), 0)
		}
		writeError(w, ve)
		return
	}
	defer wa.Remove()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Etcd-Index", strconv.FormatUint(wa.StartIndex(), 10))
	h.Set("X-Raft-Index", strconv.FormatUint(k.s.CommittedIndex(), 10))
	h.Set("X-Raft-Term", strconv.FormatUint(k.s.Term(), 10))
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-wa.Events():
			if !ok {
				return
			}
			if err := enc.Encode(ev); err != nil {
				k.lg.Debug("v2 watch: client gone", zap.Error(err))
				return
			}
			if !rq.stream {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
	}
}
