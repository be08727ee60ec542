package printer

import (
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Fields prints one `"Name" : value` line per field, for scripts.
type Fields struct {
	unsupported
	output
}

func (p *Fields) hdr(h *pb.ResponseHeader) {
	if p.hex {
		p.printf("\"ClusterID\" : %x\n", h.ClusterId)
		p.printf("\"MemberID\" : %x\n", h.MemberId)
	} else {
		p.printf("\"ClusterID\" : %d\n", h.ClusterId)
		p.printf("\"MemberID\" : %d\n", h.MemberId)
	}
	// Only key-value responses carry a revision.
	if h.Revision > 0 {
		p.printf("\"Revision\" : %d\n", h.Revision)
	}
	p.printf("\"RaftTerm\" : %d\n", h.RaftTerm)
}

func (p *Fields) kv(prefix string, kv *mvccpb.KeyValue) {
	p.printf("\"%sKey\" : %q\n", prefix, string(kv.Key))
	p.printf("\"%sCreateRevision\" : %d\n", prefix, kv.CreateRevision)
	p.printf("\"%sModRevision\" : %d\n", prefix, kv.ModRevision)
	p.printf("\"%sVersion\" : %d\n", prefix, kv.Version)
	p.printf("\"%sValue\" : %q\n", prefix, string(kv.Value))
	if p.hex {
		p.printf("\"%sLease\" : %016x\n", prefix, kv.Lease)
	} else {
		p.printf("\"%sLease\" : %d\n", prefix, kv.Lease)
	}
}

func (p *Fields) Get(r clientv3.GetResponse) error {
	p.hdr(r.Header)
	for _, kv := range r.Kvs {
		p.kv("", kv)
	}
	p.printf("\"More\" : %v\n", r.More)
	p.printf("\"Count\" : %d\n", r.Count)
	return nil
}

func (p *Fields) Put(r clientv3.PutResponse) error {
	p.hdr(r.Header)
	if r.PrevKv != nil {
		p.kv("Prev", r.PrevKv)
	}
	return nil
}

func (p *Fields) Del(r clientv3.DeleteResponse) error {
	p.hdr(r.Header)
	p.printf("\"Deleted\" : %d\n", r.Deleted)
	for _, kv := range r.PrevKvs {
		p.kv("Prev", kv)
	}
	return nil
}

func (p *Fields) Txn(r clientv3.TxnResponse) error {
	p.hdr(r.Header)
	p.printf("\"Succeeded\" : %v\n", r.Succeeded)
	for _, op := range r.Responses {
		switch v := op.Response.(type) {
		case *pb.ResponseOp_ResponseDeleteRange:
			_ = p.Del(clientv3.DeleteResponse(*v.ResponseDeleteRange))
		case *pb.ResponseOp_ResponsePut:
			_ = p.Put(clientv3.PutResponse(*v.ResponsePut))
		case *pb.ResponseOp_ResponseRange:
			_ = p.Get(clientv3.GetResponse(*v.ResponseRange))
		default:
			p.printf("\"Unknown\" : %q\n", fmt.Sprintf("%+v", v))
		}
	}
	return nil
}

func (p *Fields) EndpointHealth(hs []EndpointHealth) error {
	for _, h := range hs {
		p.printf("\"Endpoint\" : %q\n", h.Ep)
		p.println(`"Health" :`, h.Health)
		p.println(`"Took" :`, h.Took)
		p.println(`"Error" :`, h.Error)
		p.println()
	}
	return nil
}

func (p *Fields) EndpointStatus(ss []EndpointStatus) error {
	for _, s := range ss {
		r := s.Resp
		p.hdr(r.Header)
		p.printf("\"Version\" : %q\n", r.Version)
		p.printf("\"StorageVersion\" : %q\n", r.StorageVersion)
		p.println(`"DBSize" :`, r.DbSize)
		p.println(`"DBSizeInUse" :`, r.DbSizeInUse)
		p.println(`"DBSizeQuota" :`, r.DbSizeQuota)
		p.println(`"Leader" :`, r.Leader)
		p.println(`"IsLearner" :`, r.IsLearner)
		p.println(`"RaftIndex" :`, r.RaftIndex)
		p.println(`"RaftAppliedIndex" :`, r.RaftAppliedIndex)
		p.println(`"Errors" :`, r.Errors)
		p.printf("\"Endpoint\" : %q\n", s.Ep)
		p.printf("\"DowngradeTargetVersion\" : %q\n", r.DowngradeInfo.GetTargetVersion())
		p.println(`"DowngradeEnabled" :`, r.DowngradeInfo.GetEnabled())
		p.println()
	}
	return nil
}

func (p *Fields) EndpointHashKV(hs []EndpointHashKV) error {
	for _, h := range hs {
		p.hdr(h.Resp.Header)
		p.printf("\"Endpoint\" : %q\n", h.Ep)
		p.println(`"Hash" :`, h.Resp.Hash)
		p.println(`"HashRevision" :`, h.Resp.HashRevision)
		p.println()
	}
	return nil
}

func (p *Fields) id(name string, id uint64) {
	if p.hex {
		p.printf("\"%s\" : %x\n", name, id)
	} else {
		p.printf("\"%s\" : %d\n", name, id)
	}
}

func (p *Fields) MemberList(r clientv3.MemberListResponse) error {
	p.hdr(r.Header)
	for _, m := range r.Members {
		p.id("ID", m.ID)
		p.printf("\"Name\" : %q\n", m.Name)
		for _, u := range m.PeerURLs {
			p.printf("\"PeerURL\" : %q\n", u)
		}
		for _, u := range m.ClientURLs {
			p.printf("\"ClientURL\" : %q\n", u)
		}
		p.println(`"IsLearner" :`, m.IsLearner)
		p.println()
	}
	return nil
}

// Alarm dereferences the header as etcdctl does: `alarm disarm` answers
// with no header, and etcdctl then panics (nil pointer), exit 2.
func (p *Fields) Alarm(r clientv3.AlarmResponse) error {
	p.hdr(r.Header)
	for _, al := range r.Alarms {
		p.id("MemberID", al.MemberID)
		p.println(`"AlarmType" :`, al.Alarm)
		p.println()
	}
	return nil
}

func (p *Fields) DBStatus(ds DBStatus) error {
	p.println(`"Hash" :`, ds.Hash)
	p.println(`"Revision" :`, ds.Revision)
	p.println(`"Keys" :`, ds.TotalKey)
	p.println(`"Size" :`, ds.TotalSize)
	p.println(`"Version" :`, ds.Version)
	return nil
}

func (p *Fields) DBHashKV(h DBHashKV) error {
	p.println(`"Hash" :`, h.Hash)
	p.println(`"Hash revision" :`, h.HashRevision)
	p.println(`"Compact revision" :`, h.CompactRevision)
	return nil
}
