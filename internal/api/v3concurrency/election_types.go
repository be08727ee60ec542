package v3concurrency

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// The messages of etcd's election service (proto3 package "v3electionpb");
// see messages.go for how they are defined.

// CampaignRequest enters the election Name with Value, on Lease.
type CampaignRequest struct {
	Name  []byte `protobuf:"bytes,1,opt,name=name,proto3" json:"name,omitempty"`
	Lease int64  `protobuf:"varint,2,opt,name=lease,proto3" json:"lease,omitempty"`
	Value []byte `protobuf:"bytes,3,opt,name=value,proto3" json:"value,omitempty"`
}

// CampaignResponse answers once the campaigner leads.
type CampaignResponse struct {
	Header *pb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3" json:"header,omitempty"`
	Leader *LeaderKey         `protobuf:"bytes,2,opt,name=leader,proto3" json:"leader,omitempty"`
}

// LeaderKey identifies a leadership: the election, the leader's key, its
// creation revision and its lease.
type LeaderKey struct {
	Name  []byte `protobuf:"bytes,1,opt,name=name,proto3" json:"name,omitempty"`
	Key   []byte `protobuf:"bytes,2,opt,name=key,proto3" json:"key,omitempty"`
	Rev   int64  `protobuf:"varint,3,opt,name=rev,proto3" json:"rev,omitempty"`
	Lease int64  `protobuf:"varint,4,opt,name=lease,proto3" json:"lease,omitempty"`
}

// LeaderRequest names an election (Leader, Observe).
type LeaderRequest struct {
	Name []byte `protobuf:"bytes,1,opt,name=name,proto3" json:"name,omitempty"`
}

// LeaderResponse carries the leader's key and value.
type LeaderResponse struct {
	Header *pb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3" json:"header,omitempty"`
	Kv     *mvccpb.KeyValue   `protobuf:"bytes,2,opt,name=kv,proto3" json:"kv,omitempty"`
}

// ResignRequest gives up the leadership Leader.
type ResignRequest struct {
	Leader *LeaderKey `protobuf:"bytes,1,opt,name=leader,proto3" json:"leader,omitempty"`
}

// ResignResponse answers a ResignRequest.
type ResignResponse struct {
	Header *pb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3" json:"header,omitempty"`
}

// ProclaimRequest sets the leader's value without a new election.
type ProclaimRequest struct {
	Leader *LeaderKey `protobuf:"bytes,1,opt,name=leader,proto3" json:"leader,omitempty"`
	Value  []byte     `protobuf:"bytes,2,opt,name=value,proto3" json:"value,omitempty"`
}

// ProclaimResponse answers a ProclaimRequest.
type ProclaimResponse struct {
	Header *pb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3" json:"header,omitempty"`
}

func (m *CampaignRequest) Reset()         { *m = CampaignRequest{} }
func (*CampaignRequest) ProtoMessage()    {}
func (m *CampaignRequest) String() string { return text(m) }

func (m *CampaignResponse) Reset()         { *m = CampaignResponse{} }
func (*CampaignResponse) ProtoMessage()    {}
func (m *CampaignResponse) String() string { return text(m) }

func (m *LeaderKey) Reset()         { *m = LeaderKey{} }
func (*LeaderKey) ProtoMessage()    {}
func (m *LeaderKey) String() string { return text(m) }

func (m *LeaderRequest) Reset()         { *m = LeaderRequest{} }
func (*LeaderRequest) ProtoMessage()    {}
func (m *LeaderRequest) String() string { return text(m) }

func (m *LeaderResponse) Reset()         { *m = LeaderResponse{} }
func (*LeaderResponse) ProtoMessage()    {}
func (m *LeaderResponse) String() string { return text(m) }

func (m *ResignRequest) Reset()         { *m = ResignRequest{} }
func (*ResignRequest) ProtoMessage()    {}
func (m *ResignRequest) String() string { return text(m) }

func (m *ResignResponse) Reset()         { *m = ResignResponse{} }
func (*ResignResponse) ProtoMessage()    {}
func (m *ResignResponse) String() string { return text(m) }

func (m *ProclaimRequest) Reset()         { *m = ProclaimRequest{} }
func (*ProclaimRequest) ProtoMessage()    {}
func (m *ProclaimRequest) String() string { return text(m) }

func (m *ProclaimResponse) Reset()         { *m = ProclaimResponse{} }
func (*ProclaimResponse) ProtoMessage()    {}
func (m *ProclaimResponse) String() string { return text(m) }
