package server

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/internal/membership"
)

// processStart is when this process started: /v2/stats/self's startTime.
var processStart = time.Now()

// v2Stats counts what etcd 3.4's /v2/stats/self and /v2/stats/leader
// report: append requests received and sent, and per peer the messages
// handed to the transport (success) and those it reported lost (fail).
type v2Stats struct {
	recvAppend atomic.Uint64
	sendAppend atomic.Uint64
	peers      sync.Map // uint64 → *peerCounts
	// sendRate and recvRate sample the last append requests, as etcd's
	// rate queues do.
	sendRate, recvRate rateQueue
}

// rateQueue keeps the times and sizes of the last 200 append requests;
// its rate is over their span, and zero once the newest is a second old
// (etcd 3.4's statsQueue).
type rateQueue struct {
	mu    sync.Mutex
	at    [200]int64
	size  [200]int
	n, i  int
	total int
}

func (q *rateQueue) add(now time.Time, size int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == len(q.at) {
		q.total -= q.size[q.i]
	} else {
		q.n++
	}
	q.at[q.i], q.size[q.i] = now.UnixNano(), size
	q.total += size
	q.i = (q.i + 1) % len(q.at)
}

// rate is requests and bytes per second.
func (q *rateQueue) rate(now time.Time) (float64, float64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return 0, 0
	}
	back := q.at[(q.i+len(q.at)-1)%len(q.at)]
	front := q.at[(q.i+len(q.at)-q.n)%len(q.at)]
	if now.UnixNano()-back > int64(time.Second) {
		q.n, q.total = 0, 0
		return 0, 0
	}
	span := float64(back - front)
	if span <= 0 {
		return 0, 0
	}
	return float64(q.n) / span * 1e9, float64(q.total) / span * 1e9
}

type peerCounts struct{ success, fail atomic.Uint64 }

func (v *v2Stats) peer(id uint64) *peerCounts {
	if p, ok := v.peers.Load(id); ok {
		return p.(*peerCounts)
	}
	p, _ := v.peers.LoadOrStore(id, &peerCounts{})
	return p.(*peerCounts)
}

func (v *v2Stats) sent(msgs []raftpb.Message) {
	for i := range msgs {
		if msgs[i].Type == raftpb.MsgApp {
			v.sendAppend.Add(1)
			v.sendRate.add(time.Now(), msgs[i].Size())
		}
		v.peer(msgs[i].To).success.Add(1)
	}
}

func (v *v2Stats) received(m raftpb.Message) {
	if m.Type == raftpb.MsgApp {
		v.recvAppend.Add(1)
		v.recvRate.add(time.Now(), m.Size())
	}
}

// selfStats is etcd 3.4's /v2/stats/self body; rates are left out when
// zero, as etcd leaves them.
type selfStats struct {
	Name       string    `json:"name"`
	ID         string    `json:"id"`
	State      string    `json:"state"`
	StartTime  time.Time `json:"startTime"`
	LeaderInfo struct {
		Leader    string    `json:"leader"`
		Uptime    string    `json:"uptime"`
		StartTime time.Time `json:"startTime"`
	} `json:"leaderInfo"`
	RecvAppendRequestCnt uint64  `json:"recvAppendRequestCnt"`
	RecvPkgRate          float64 `json:"recvPkgRate,omitempty"`
	RecvBandwidthRate    float64 `json:"recvBandwidthRate,omitempty"`
	SendAppendRequestCnt uint64  `json:"sendAppendRequestCnt"`
	SendPkgRate          float64 `json:"sendPkgRate,omitempty"`
	SendBandwidthRate    float64 `json:"sendBandwidthRate,omitempty"`
}

// V2SelfStats is /v2/stats/self: this member's name, ID, raft state, start
// time, the leader it follows since when, and the append requests it
// received and sent, with their recent rates.
func (s *Server) V2SelfStats() []byte {
	st := selfStats{Name: s.cfg.Name, ID: membership.FormatID(s.ID()), State: raft.StateFollower.String(),
		StartTime: processStart.UTC(), RecvAppendRequestCnt: s.v2stats.recvAppend.Load(),
		SendAppendRequestCnt: s.v2stats.sendAppend.Load()}
	if rs, ok := s.RaftStatus(); ok {
		st.State = rs.RaftState.String()
	}
	if lead := s.Leader(); lead != raft.None {
		st.LeaderInfo.Leader = membership.FormatID(lead)
		if at := s.leaderChangedAt.Load(); at != 0 {
			st.LeaderInfo.StartTime = time.Unix(0, at).UTC()
		}
	}
	st.LeaderInfo.Uptime = time.Since(st.LeaderInfo.StartTime).String()
	now := time.Now()
	st.RecvPkgRate, st.RecvBandwidthRate = s.v2stats.recvRate.rate(now)
	st.SendPkgRate, st.SendBandwidthRate = s.v2stats.sendRate.rate(now)
	b, _ := json.Marshal(st)
	return b
}

type followerStats struct {
	Latency struct {
		Current           float64 `json:"current"`
		Average           float64 `json:"average"`
		StandardDeviation float64 `json:"standardDeviation"`
		Minimum           float64 `json:"minimum"`
		Maximum           float64 `json:"maximum"`
	} `json:"latency"`
	Counts struct {
		Fail    uint64 `json:"fail"`
		Success uint64 `json:"success"`
	} `json:"counts"`
}

// V2LeaderStats is /v2/stats/leader, or nil when this member does not
// lead: one entry per other member with the messages sent to it and those
// lost. Latency is not measured: its fields are etcd's values for a
// follower without samples (minimum 2^63).
func (s *Server) V2LeaderStats() []byte {
	if !s.IsLeader() {
		return nil
	}
	out := struct {
		Leader    string                    `json:"leader"`
		Followers map[string]*followerStats `json:"followers"`
	}{Leader: membership.FormatID(s.ID()), Followers: map[string]*followerStats{}}
	for _, m := range s.cl.Members() {
		if m.ID == s.ID() {
			continue
		}
		f := &followerStats{}
		f.Latency.Minimum = 1 << 63
		c := s.v2stats.peer(m.ID)
		f.Counts.Success, f.Counts.Fail = c.success.Load(), c.fail.Load()
		out.Followers[membership.FormatID(m.ID)] = f
	}
	b, _ := json.Marshal(out)
	return b
}

// V2Members is the member set, sorted by ID.
func (s *Server) V2Members() []*membership.Member { return s.cl.Members() }
