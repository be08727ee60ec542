package server

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
)

// Backend quota, as etcd's: a write that would take the backend past
// --quota-backend-bytes is refused with "mvcc: database space exceeded"
// and raises the cluster-wide NOSPACE alarm; while the alarm is active the
// apply layer refuses every write that could grow the store, on every
// member alike (deletes and compactions still go through).

// kvOverhead is etcd's estimate of the backend bytes a key costs beyond its
// key and value.
const kvOverhead = 256

func putCost(r *pb.PutRequest) int64 { return int64(kvOverhead + len(r.Key) + len(r.Value)) }

func txnCost(r *pb.TxnRequest) int64 {
	var c int64
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		var branch int64
		for _, op := range ops {
			switch {
			case op.GetRequestPut() != nil:
				branch += putCost(op.GetRequestPut())
			case op.GetRequestTxn() != nil:
				branch += txnCost(op.GetRequestTxn())
			}
		}
		c = max(c, branch)
	}
	return c
}

// quotaAvailable reports whether a write of cost bytes fits the quota.
func (s *Server) quotaAvailable(cost int64) bool {
	q := s.cfg.Quota()
	return q == 0 || cost == 0 || s.be.Size()+cost <= q
}

// refuseOverQuota raises the NOSPACE alarm (once) and returns ErrNoSpace.
func (s *Server) refuseOverQuota(ctx context.Context) error {
	for _, a := range s.Alarms() {
		if a.Alarm == pb.AlarmType_NOSPACE && a.MemberID == s.ID() {
			return ErrNoSpace
		}
	}
	s.lg.Warn("backend quota exceeded; raising NOSPACE alarm",
		zap.Int64("quota-size-bytes", s.cfg.Quota()), zap.Int64("current-db-size-bytes", s.be.Size()))
	req := &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: s.ID(), Alarm: pb.AlarmType_NOSPACE}
	if _, err := s.Alarm(ctx, req); err != nil {
		s.lg.Warn("failed to raise NOSPACE alarm", zap.Error(err))
	}
	return ErrNoSpace
}
