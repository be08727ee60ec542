package apply

import (
	"slices"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/schema"
)

// Alarms is the set of active alarms, as applied. Like etcd, every alarm
// request (list included) goes through raft, so all members agree on the
// set and on the log it produced.
//
// Threading: changed by the apply goroutine, read by any goroutine.
type Alarms struct {
	mu     sync.RWMutex
	active []*pb.AlarmMember
}

// List returns the active alarms.
func (a *Alarms) List() []*pb.AlarmMember {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return slices.Clone(a.active)
}

// noSpace reports whether a NOSPACE alarm is active.
func (a *Alarms) noSpace() bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, m := range a.active {
		if m.Alarm == pb.AlarmType_NOSPACE {
			return true
		}
	}
	return false
}

// corrupt reports whether a CORRUPT alarm is active.
func (a *Alarms) corrupt() bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, m := range a.active {
		if m.Alarm == pb.AlarmType_CORRUPT {
			return true
		}
	}
	return false
}

// Restore loads the alarms persisted in the backend.
func (a *Alarms) Restore(r schema.Reader) error {
	var list []*pb.AlarmMember
	var err error
	r.Range(schema.Alarm, nil, nil, 0, func(k, _ []byte) bool {
		m := &pb.AlarmMember{}
		if err = m.Unmarshal(k); err != nil {
			return false
		}
		list = append(list, m)
		return true
	})
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.active = list
	a.mu.Unlock()
	return nil
}

func (a *Alarms) find(m *pb.AlarmMember) int {
	return slices.IndexFunc(a.active, func(x *pb.AlarmMember) bool {
		return x.MemberID == m.MemberID && x.Alarm == m.Alarm
	})
}

// apply executes an AlarmRequest, persisting changes through tx.
func (a *Alarms) apply(r *pb.AlarmRequest, tx *backend.WriteTx) (*pb.AlarmResponse, error) {
	resp := &pb.AlarmResponse{Header: &pb.ResponseHeader{}}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch r.Action {
	case pb.AlarmRequest_GET:
		for _, m := range a.active {
			if r.Alarm == pb.AlarmType_NONE || r.Alarm == m.Alarm {
				resp.Alarms = append(resp.Alarms, m)
			}
		}
	case pb.AlarmRequest_ACTIVATE:
		if r.Alarm == pb.AlarmType_NONE {
			break
		}
		m := &pb.AlarmMember{MemberID: r.MemberID, Alarm: r.Alarm}
		if a.find(m) >= 0 {
			break
		}
		k, err := m.Marshal()
		if err != nil {
			return nil, err
		}
		if err := tx.Put(schema.Alarm, k, nil); err != nil {
			return nil, err
		}
		a.active = append(a.active, m)
		resp.Alarms = append(resp.Alarms, m)
	case pb.AlarmRequest_DEACTIVATE:
		m := &pb.AlarmMember{MemberID: r.MemberID, Alarm: r.Alarm}
		i := a.find(m)
		if i < 0 {
			break
		}
		k, err := m.Marshal()
		if err != nil {
			return nil, err
		}
		if err := tx.Delete(schema.Alarm, k); err != nil {
			return nil, err
		}
		a.active = slices.Delete(a.active, i, i+1)
		resp.Alarms = append(resp.Alarms, m)
	}
	return resp, nil
}
