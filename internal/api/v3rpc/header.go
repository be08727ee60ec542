package v3rpc

import pb "go.etcd.io/etcd/api/v3/etcdserverpb"

// header fills the ResponseHeader every v3 response carries.
type header struct{ m Member }

func (h header) fill(hp **pb.ResponseHeader) {
	h.fillNoRev(hp)
	if rh := *hp; rh.Revision == 0 {
		rh.Revision = h.m.Rev()
	}
}

// fillNoRev fills a header without a revision, as etcd's Cluster service
// answers (its member list is not tied to a key-value revision).
func (h header) fillNoRev(hp **pb.ResponseHeader) {
	if *hp == nil {
		*hp = &pb.ResponseHeader{}
	}
	rh := *hp
	rh.ClusterId = h.m.ClusterID()
	rh.MemberId = h.m.ID()
	rh.RaftTerm = h.m.Term()
}
