package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
)

// Promoting a learner. Only the leader knows how far the learner's log
// is (raft's progress), so it alone decides; any other member forwards the
// request to the leader's peer URL as POST /members/promote/<decimal ID>
// (peer protocol §10.3), which etcd members serve and send too.

// learnerReadyPercent is how much of the leader's log (by match index) a
// learner must hold to be promoted (etcd's value).
const learnerReadyPercent = 0.9

// promotePathPrefix is the peer-port path of forwarded promotions.
const promotePathPrefix = "/members/promote/"

// PromoteMember makes learner id a voting member and returns the member
// set after the change.
func (s *Server) PromoteMember(ctx context.Context, id uint64) ([]*membership.Member, error) {
	ms, err := s.promoteLocal(ctx, id)
	if !errors.Is(err, errNotLeader) {
		return ms, err
	}
	// The started rule depends only on the member set, which every member
	// knows: refusing here spares a round of forwarding that would only
	// end in a timeout (the leader answers 500 to that refusal).
	if s.cfg.StrictReconfigCheck {
		if r := checkPromote(s.voterStates(time.Now())); r != nil {
			s.logRefusal("promote", r, zap.String("requested-member-promote", membership.FormatID(id)))
			return nil, r.err
		}
	}
	return s.forwardPromote(ctx, id)
}

// promoteLocal promotes id if this member leads; errNotLeader otherwise.
func (s *Server) promoteLocal(ctx context.Context, id uint64) ([]*membership.Member, error) {
	if err := s.learnerReady(ctx, id); err != nil {
		return nil, err
	}
	if s.cfg.StrictReconfigCheck {
		if r := checkPromote(s.voterStates(time.Now())); r != nil {
			s.logRefusal("promote", r, zap.String("requested-member-promote", membership.FormatID(id)))
			return nil, r.err
		}
	}
	b, err := membership.MarshalContext(&membership.Member{ID: id}, true)
	if err != nil {
		return nil, err
	}
	return s.configure(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: id, Context: b})
}

// learnerReady checks, on the leader, that learner id holds at least 90%
// of the leader's log. It returns errNotLeader elsewhere, and
// membership.ErrIDNotFound for an ID raft does not track. Whether id is a
// learner at all is checked when the change is applied.
func (s *Server) learnerReady(ctx context.Context, id uint64) error {
	// Let apply catch up with what is committed first, so the member set
	// the change is validated against is current (bounded, as etcd's).
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	select {
	case <-s.applied.Wait(s.CommittedIndex()):
	case <-wctx.Done():
	case <-s.stopping:
	}
	cancel()
	st, err := s.node.Status()
	if err != nil {
		return ErrStopped
	}
	if st.Progress == nil {
		return errNotLeader
	}
	pr, ok := st.Progress[id]
	if !ok {
		return membership.ErrIDNotFound
	}
	leader := st.Progress[st.ID].Match
	if float64(pr.Match) < float64(leader)*learnerReadyPercent {
		return ErrLearnerNotReady
	}
	return nil
}

// forwardPromote asks the leader, over the peer port, to promote id,
// retrying other failures until the request timeout.
func (s *Server) forwardPromote(ctx context.Context, id uint64) ([]*membership.Member, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout())
	defer cancel()
	retry := time.NewTicker(s.cfg.TickInterval())
	defer retry.Stop()
	for {
		if lead := s.cl.Member(s.Leader()); lead != nil && lead.ID != s.ID() {
			for _, u := range lead.PeerURLs {
				ms, err := s.promoteAt(ctx, u, id)
				if err == nil {
					return ms, nil
				}
				if errors.Is(err, ErrLearnerNotReady) || errors.Is(err, membership.ErrIDNotFound) ||
					errors.Is(err, membership.ErrMemberNotLearner) {
					return nil, err
				}
				s.lg.Debug("forwarding member promotion to the leader failed", zap.String("url", u), zap.Error(err))
			}
		}
		select {
		case <-retry.C:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, ErrTimeout
			}
			return nil, ErrCanceled
		case <-s.stopping:
			return nil, ErrStopped
		}
	}
}

// promoteAt sends one promotion request to the peer URL u and reads
// etcd's answer: 200 with the member list, 404 for an unknown ID, 412 for
// a voter or a learner not yet in sync.
func (s *Server) promoteAt(ctx context.Context, u string, id uint64) ([]*membership.Member, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(u, "/")+promotePathPrefix+strconv.FormatUint(id, 10), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.peerClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		var ms []*membership.Member
		if err := json.Unmarshal(b, &ms); err != nil {
			return nil, fmt.Errorf("promote at %s: bad member list: %w", u, err)
		}
		return ms, nil
	case http.StatusNotFound:
		return nil, membership.ErrIDNotFound
	case http.StatusPreconditionFailed:
		switch body := string(b); {
		case strings.Contains(body, ErrLearnerNotReady.Error()):
			return nil, ErrLearnerNotReady
		case strings.Contains(body, membership.ErrMemberNotLearner.Error()):
			return nil, membership.ErrMemberNotLearner
		}
	case http.StatusRequestTimeout:
		return nil, fmt.Errorf("promote at %s: %w", u, ErrTimeout)
	}
	return nil, fmt.Errorf("promote at %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
}

// PromoteHandler serves POST /members/promote/<decimal ID> on the peer
// port, with etcd's answers: 200 and the member list as /members gives it;
// 404 for an unparsable or unknown ID; 412 for a voter or a learner not in
// sync; 500 {"message":"Internal Server Error"} otherwise.
func (s *Server) PromoteHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("X-Etcd-Cluster-ID", membership.FormatID(s.ClusterID()))
		idStr := strings.TrimPrefix(r.URL.Path, promotePathPrefix)
		id, err := strconv.ParseUint(idStr, 10, 64)
		if err != nil {
			http.Error(w, fmt.Sprintf("member %s not found in cluster", idStr), http.StatusNotFound)
			return
		}
		ms, err := s.PromoteMember(r.Context(), id)
		if err != nil {
			s.lg.Warn("failed to promote a member", zap.String("member-id", membership.FormatID(id)), zap.Error(err))
			switch {
			case errors.Is(err, membership.ErrIDNotFound):
				http.Error(w, membership.ErrIDNotFound.Error(), http.StatusNotFound)
			case errors.Is(err, membership.ErrMemberNotLearner):
				http.Error(w, membership.ErrMemberNotLearner.Error(), http.StatusPreconditionFailed)
			case errors.Is(err, ErrLearnerNotReady):
				http.Error(w, ErrLearnerNotReady.Error(), http.StatusPreconditionFailed)
			default:
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				io.WriteString(w, `{"message":"Internal Server Error"}`)
			}
			return
		}
		if ms == nil {
			ms = []*membership.Member{}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		json.NewEncoder(w).Encode(ms)
	})
}
