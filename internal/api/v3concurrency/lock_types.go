package v3concurrency

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// The messages of etcd's lock service (proto3 package "v3lockpb"); see
// messages.go for how they are defined.

// LockRequest asks for the lock Name, held on Lease (0: a lease of 60 s
// granted for the lock and never kept alive, as etcd does).
type LockRequest struct {
	Name  []byte `protobuf:"bytes,1,opt,name=name,proto3" json:"name,omitempty"`
	Lease int64  `protobuf:"varint,2,opt,name=lease,proto3" json:"lease,omitempty"`
}

// LockResponse names the key that holds the lock: "<name>/<lease hex>".
type LockResponse struct {
	Header *pb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3" json:"header,omitempty"`
	Key    []byte             `protobuf:"bytes,2,opt,name=key,proto3" json:"key,omitempty"`
}

// UnlockRequest releases the lock held by Key (a LockResponse's key).
type UnlockRequest struct {
	Key []byte `protobuf:"bytes,1,opt,name=key,proto3" json:"key,omitempty"`
}

// UnlockResponse answers an UnlockRequest.
type UnlockResponse struct {
	Header *pb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3" json:"header,omitempty"`
}

func (m *LockRequest) Reset()         { *m = LockRequest{} }
func (*LockRequest) ProtoMessage()    {}
func (m *LockRequest) String() string { return text(m) }

func (m *LockResponse) Reset()         { *m = LockResponse{} }
func (*LockResponse) ProtoMessage()    {}
func (m *LockResponse) String() string { return text(m) }

func (m *UnlockRequest) Reset()         { *m = UnlockRequest{} }
func (*UnlockRequest) ProtoMessage()    {}
func (m *UnlockRequest) String() string { return text(m) }

func (m *UnlockResponse) Reset()         { *m = UnlockResponse{} }
func (*UnlockResponse) ProtoMessage()    {}
func (m *UnlockResponse) String() string { return text(m) }
