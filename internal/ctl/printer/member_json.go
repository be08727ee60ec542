package printer

import (
	"encoding/json"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// With --hex, etcdctl's json printer writes member and cluster IDs of
// member responses as hex strings. It does so by shadowing the protobuf
// fields in wrapper structs, so encoding/json keeps every other field (and
// its omitempty) as it is; these types do the same.

type hexHeader pb.ResponseHeader

func (h *hexHeader) MarshalJSON() ([]byte, error) {
	type alias pb.ResponseHeader
	return json.Marshal(&struct {
		ClusterID string `json:"cluster_id"`
		MemberID  string `json:"member_id"`
		alias
	}{fmt.Sprintf("%x", h.ClusterId), fmt.Sprintf("%x", h.MemberId), alias(*h)})
}

type hexMember pb.Member

func (m *hexMember) MarshalJSON() ([]byte, error) {
	type alias pb.Member
	return json.Marshal(&struct {
		ID string `json:"ID"`
		alias
	}{fmt.Sprintf("%x", m.ID), alias(*m)})
}

func (p *jsonPrinter) MemberList(r clientv3.MemberListResponse) error {
	if !p.hex {
		p.printJSON((*pb.MemberListResponse)(&r))
		return nil
	}
	type alias clientv3.MemberListResponse
	members := make([]*hexMember, len(r.Members))
	for i, m := range r.Members {
		members[i] = (*hexMember)(m)
	}
	p.printJSON(&struct {
		Header  *hexHeader   `json:"header"`
		Members []*hexMember `json:"members"`
		*alias
	}{(*hexHeader)(r.Header), members, (*alias)(&r)})
	return nil
}

func (p *jsonPrinter) Alarm(r clientv3.AlarmResponse) error {
	p.printJSON((*pb.AlarmResponse)(&r))
	return nil
}

func (p *jsonPrinter) DBStatus(ds DBStatus) error { p.printJSON(ds); return nil }
func (p *jsonPrinter) DBHashKV(h DBHashKV) error  { p.printJSON(h); return nil }
