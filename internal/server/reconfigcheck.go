package server

import (
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
)

// The strict reconfiguration checks (--strict-reconfig-check, spec C.2):
// etcd's two rules, applied by the member that receives the request.
//
//   - started: after the change, a quorum of the voting members must have
//     started (published a name). An added member counts as not started;
//     a promoted learner counts as started.
//   - connected: this member must have been connected for healthInterval
//     to enough voting members that the change cannot leave the cluster
//     without an active quorum (itself counts as connected).
//
// The check functions are pure: they take what this member knows of each
// voter and return a refusal that names the members it is about, so the
// operator learns which member is down and what to do first.

// healthInterval is how long a peer's connection must have been active
// for the peer to count as connected (etcd's HealthInterval).
const healthInterval = 5 * time.Second

// voterState is what the checks know of one voting member.
type voterState struct {
	id   uint64
	name string // "" until it has started
	self bool
	// active: its peer connection is up now; connected: up since before
	// now - healthInterval. Both are true for this member itself.
	active, connected bool
}

func (v voterState) started() bool { return v.name != "" }

func (v voterState) String() string {
	if v.name == "" {
		return membership.FormatID(v.id) + " (not started)"
	}
	return fmt.Sprintf("%s (%s)", v.name, membership.FormatID(v.id))
}

// voterStates describes the current voting members as of now.
func (s *Server) voterStates(now time.Time) []voterState {
	var out []voterState
	for _, m := range s.cl.Members() {
		if m.IsLearner {
			continue
		}
		v := voterState{id: m.ID, name: m.Name, self: m.ID == s.ID()}
		if v.self {
			v.active, v.connected = true, true
		} else if since := s.PeerActiveSince(m.ID); !since.IsZero() {
			v.active = true
			v.connected = since.Before(now.Add(-healthInterval))
		}
		out = append(out, v)
	}
	return out
}

// refusal is why a strict check refused a change.
type refusal struct {
	err     error  // ErrNotEnoughStartedMembers or ErrUnhealthy
	etcdMsg string // etcd's log message for the refusal
	reason  string // what is wrong, naming the members concerned
	hint    string // what the operator can do
}

func quorum(n int) int { return n/2 + 1 }

// checkAdd decides whether a member may be added to the voters vs.
func checkAdd(vs []voterState, learner bool) *refusal {
	if !learner {
		nmembers := len(vs) + 1
		started, unstarted := splitStarted(vs)
		// Growing a one-member cluster is allowed (etcd's restore runbook).
		if !(len(started) == 1 && nmembers == 2) && len(started) < quorum(nmembers) {
			return &refusal{
				err:     ErrNotEnoughStartedMembers,
				etcdMsg: "rejecting member add request; not enough healthy members",
				reason: fmt.Sprintf("%d of %d voting members have started, and with one more member a quorum needs %d started; not started: %s",
					len(started), len(vs), quorum(nmembers), list(unstarted)),
				hint: "start the members added earlier (with the ETCD_* settings `member add` printed and --initial-cluster-state existing) or remove them, then add this one",
			}
		}
	}
	if len(vs) <= 1 {
		return nil // a single voter may always grow
	}
	need := quorum(len(vs) + 1)
	connected, down := splitConnected(vs)
	if len(connected) < need {
		return &refusal{
			err:     ErrUnhealthy,
			etcdMsg: "rejecting member add request; local member has not been connected to majority peers, reconfigure breaks active quorum",
			reason: fmt.Sprintf("this member has been connected for the last %v to %d of %d voting members (itself included); with one more member a quorum is %d, so until the new member runs the cluster could not commit; not connected: %s",
				healthInterval, len(connected), len(vs), need, list(down)),
			hint: fmt.Sprintf("if %s is gone for good, remove it first (`member remove %s`), then add its replacement; if it is only restarting, wait until it is back",
				list(down), firstID(down)),
		}
	}
	return nil
}

// checkRemove decides whether member target may be removed from the
// voters vs; a learner may always go.
func checkRemove(vs []voterState, target uint64, targetIsLearner bool) *refusal {
	if targetIsLearner {
		return nil
	}
	var others []voterState
	var tv *voterState
	for i, v := range vs {
		if v.id == target {
			tv = &vs[i]
			continue
		}
		others = append(others, v)
	}
	started, unstarted := splitStarted(others)
	if len(started) < quorum(len(others)) {
		return &refusal{
			err:     ErrNotEnoughStartedMembers,
			etcdMsg: "rejecting member remove request; not enough healthy members",
			reason: fmt.Sprintf("after the removal %d of the %d remaining voting members would have started, and a quorum needs %d; not started: %s",
				len(started), len(others), quorum(len(others)), list(unstarted)),
			hint: "start the members that never started (or remove those first), then remove this one",
		}
	}
	// A member that is down is not part of the active quorum: removing it
	// cannot break it.
	if tv == nil || (!tv.self && !tv.active) {
		return nil
	}
	connected, down := splitConnected(vs)
	if len(connected)-1 < 1+(len(vs)-1)/2 {
		return &refusal{
			err:     ErrUnhealthy,
			etcdMsg: "rejecting member remove request; local member has not been connected to all peers, reconfigure breaks active quorum",
			reason: fmt.Sprintf("this member has been connected for the last %v to %d of %d voting members (itself included); without %s too few would remain for a quorum of %d; not connected: %s",
				healthInterval, len(connected), len(vs), tv, quorum(len(vs)-1), list(down)),
			hint: fmt.Sprintf("bring %s back, or remove it first (`member remove %s`) since it is down, then remove this one", list(down), firstID(down)),
		}
	}
	return nil
}

// checkPromote decides whether a learner may become a voter among vs.
func checkPromote(vs []voterState) *refusal {
	nmembers := len(vs) + 1
	started, unstarted := splitStarted(vs)
	if len(started)+1 < quorum(nmembers) {
		return &refusal{
			err:     ErrNotEnoughStartedMembers,
			etcdMsg: "rejecting member promote request; not enough healthy members",
			reason: fmt.Sprintf("%d of %d voting members have started, and with the learner a quorum needs %d started; not started: %s",
				len(started), len(vs), quorum(nmembers), list(unstarted)),
			hint: "start the members that never started, or remove them, then promote",
		}
	}
	return nil
}

func splitStarted(vs []voterState) (started, unstarted []voterState) {
	for _, v := range vs {
		if v.started() {
			started = append(started, v)
		} else {
			unstarted = append(unstarted, v)
		}
	}
	return started, unstarted
}

func splitConnected(vs []voterState) (connected, down []voterState) {
	for _, v := range vs {
		if v.connected {
			connected = append(connected, v)
		} else {
			down = append(down, v)
		}
	}
	return connected, down
}

func list(vs []voterState) string {
	if len(vs) == 0 {
		return "none"
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, ", ")
}

func firstID(vs []voterState) string {
	if len(vs) == 0 {
		return "<id>"
	}
	return membership.FormatID(vs[0].id)
}

// logRefusal logs a refusal under etcd's message, with the plain-words
// reason and what to do.
func (s *Server) logRefusal(op string, r *refusal, fields ...zap.Field) {
	fields = append([]zap.Field{
		zap.String("local-member-id", membership.FormatID(s.ID())),
		zap.String("operation", op),
		zap.String("reason", r.reason),
		zap.String("suggestion", r.hint),
	}, fields...)
	s.lg.Warn(r.etcdMsg, append(fields, zap.Error(r.err))...)
}
