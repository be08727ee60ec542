package v2http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
)

// ClusterServer is what /v2/members, /v2/machines and /v2/stats need of a
// member. Reconfiguration is the v3 API's (etcd's strict checks included);
// only the answers are the v2 API's.
type ClusterServer interface {
	ClusterID() uint64
	Leader() uint64
	V2Members() []*membership.Member
	AddMember(ctx context.Context, peerURLs []string, learner bool) (*membership.Member, []*membership.Member, error)
	RemoveMember(ctx context.Context, id uint64) ([]*membership.Member, error)
	UpdateMember(ctx context.Context, id uint64, peerURLs []string) ([]*membership.Member, error)
	V2SelfStats() []byte
	// V2LeaderStats is nil when this member does not lead.
	V2LeaderStats() []byte
}

const membersPrefix = "/v2/members"

// allowMethod answers 405 with Allow unless m is one of ms.
func allowMethod(w http.ResponseWriter, m string, ms ...string) bool {
	for _, x := range ms {
		if m == x {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(ms, ","))
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return false
}

// writeMessage answers with etcd's {"message":...} error body.
func writeMessage(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	w.Write(b)
}

// v2Member is a member as the v2 API shows it: hex ID, no learner flag,
// empty lists rather than null.
type v2Member struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

func newV2Member(m *membership.Member) v2Member {
	return v2Member{ID: membership.FormatID(m.ID), Name: m.Name,
		PeerURLs: append([]string{}, m.PeerURLs...), ClientURLs: append([]string{}, m.ClientURLs...)}
}

type members struct {
	s       ClusterServer
	lg      *zap.Logger
	timeout time.Duration
}

func (h *members) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET", "POST", "DELETE", "PUT") {
		return
	}
	w.Header().Set("X-Etcd-Cluster-ID", strconv.FormatUint(h.s.ClusterID(), 16))
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	switch r.Method {
	case "GET":
		switch trimID(r.URL.Path) {
		case "":
			ms := []v2Member{}
			for _, m := range h.s.V2Members() {
				ms = append(ms, newV2Member(m))
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(struct {
				Members []v2Member `json:"members"`
			}{ms})
		case "leader":
			lead := h.s.Leader()
			var m *membership.Member
			for _, x := range h.s.V2Members() {
				if x.ID == lead {
					m = x
				}
			}
			if lead == 0 || m == nil {
				writeMessage(w, http.StatusServiceUnavailable, "During election")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(newV2Member(m))
		default:
			writeMessage(w, http.StatusNotFound, "Not found")
		}
	case "POST":
		urls, ok := readPeerURLs(w, r)
		if !ok {
			return
		}
		m, _, err := h.s.AddMember(ctx, urls, false)
		switch {
		case errors.Is(err, membership.ErrIDExists), errors.Is(err, membership.ErrPeerURLExists):
			writeMessage(w, http.StatusConflict, unwrapMessage(err))
		case err != nil:
			h.internal(w, r, err)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(newV2Member(m))
		}
	case "DELETE":
		id, ok := parseID(w, r.URL.Path)
		if !ok {
			return
		}
		_, err := h.s.RemoveMember(ctx, id)
		switch {
		case errors.Is(err, membership.ErrIDRemoved):
			writeMessage(w, http.StatusGone, "Member permanently removed: "+membership.FormatID(id))
		case errors.Is(err, membership.ErrIDNotFound):
			writeMessage(w, http.StatusNotFound, "No such member: "+membership.FormatID(id))
		case err != nil:
			h.internal(w, r, err)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	case "PUT":
		id, ok := parseID(w, r.URL.Path)
		if !ok {
			return
		}
		urls, ok := readPeerURLs(w, r)
		if !ok {
			return
		}
		_, err := h.s.UpdateMember(ctx, id, urls)
		switch {
		case errors.Is(err, membership.ErrPeerURLExists):
			writeMessage(w, http.StatusConflict, unwrapMessage(err))
		case errors.Is(err, membership.ErrIDNotFound):
			writeMessage(w, http.StatusNotFound, "No such member: "+membership.FormatID(id))
		case err != nil:
			h.internal(w, r, err)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

// internal answers any other failure as etcd 3.4 does (500, "Internal
// Server Error") and logs the reason, which the body does not give.
func (h *members) internal(w http.ResponseWriter, r *http.Request, err error) {
	h.lg.Warn("v2 members request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
}

// unwrapMessage is the sentinel's own text: etcd's 409 bodies are
// "membership: ID exists" and "membership: peerURL exists".
func unwrapMessage(err error) string {
	for _, s := range []error{membership.ErrIDExists, membership.ErrPeerURLExists} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return err.Error()
}

func trimID(p string) string {
	return strings.TrimPrefix(strings.TrimPrefix(p, membersPrefix), "/")
}

// parseID reads the hex member ID after /v2/members/: none is 405, a bad
// one 404, as etcd 3.4 answers.
func parseID(w http.ResponseWriter, p string) (uint64, bool) {
	s := trimID(p)
	if s == "" {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return 0, false
	}
	id, err := types.IDFromString(s)
	if err != nil {
		writeMessage(w, http.StatusNotFound, "No such member: "+s)
		return 0, false
	}
	return uint64(id), true
}

// readPeerURLs reads {"peerURLs":[...]}: Content-Type must be
// application/json (parameters ignored), else 415; bad JSON or URLs 400
// with the parser's text; URLs are checked and sorted as etcd's types.URLs.
func readPeerURLs(w http.ResponseWriter, r *http.Request) ([]string, bool) {
	ct := r.Header.Get("Content-Type")
	if i := strings.Index(ct, ";"); i >= 0 {
		ct = strings.TrimSpace(strings.ToLower(ct[:i]))
	}
	if ct != "application/json" {
		writeMessage(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Bad Content-Type %s, accept application/json", ct))
		return nil, false
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	var req struct {
		PeerURLs []string `json:"peerURLs"`
	}
	if err := json.Unmarshal(b, &req); err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	urls, err := types.NewURLs(req.PeerURLs)
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return urls.StringSlice(), true
}

// machines is /v2/machines: every member's client URLs, sorted, joined
// with ", ".
func machines(s ClusterServer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !allowMethod(w, r.Method, "GET", "HEAD") {
			return
		}
		var urls []string
		for _, m := range s.V2Members() {
			urls = append(urls, m.ClientURLs...)
		}
		sort.Strings(urls)
		w.Write([]byte(strings.Join(urls, ", ")))
	}
}

// stats serves /v2/stats/{store,self,leader}; leader answers 403 on a
// member that does not lead.
func stats(s Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !allowMethod(w, r.Method, "GET") {
			return
		}
		var b []byte
		switch r.URL.Path {
		case "/v2/stats/store":
			b = s.V2Store().StatsJSON()
		case "/v2/stats/self":
			b = s.V2SelfStats()
		case "/v2/stats/leader":
			if b = s.V2LeaderStats(); b == nil {
				writeMessage(w, http.StatusForbidden, "not current leader")
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}
}
