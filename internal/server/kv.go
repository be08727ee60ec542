package server

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/internal/txn"
)

func (s *Server) kvRange(_ context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	return s.exec.Range(r)
}

func (s *Server) kvReadTxn(_ context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	return s.exec.Txn(r, txn.ConsistentIndex{})
}

// Hash is Maintenance.Hash: a hash of the whole backend.
func (s *Server) Hash(ctx context.Context) (*pb.HashResponse, error) {
	if err := s.be.ForceCommit(); err != nil {
		return nil, err
	}
	h, rev, err := s.kv.Hash()
	if err != nil {
		return nil, err
	}
	return &pb.HashResponse{Header: &pb.ResponseHeader{Revision: rev}, Hash: h}, nil
}

// HashKV is Maintenance.HashKV: etcd's hash of the key space up to rev.
func (s *Server) HashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error) {
	h, cur, err := s.kv.HashByRev(rev)
	if err != nil {
		return nil, err
	}
	return &pb.HashKVResponse{
		Header:          &pb.ResponseHeader{Revision: cur},
		Hash:            h.Hash,
		CompactRevision: h.CompactRevision,
		HashRevision:    h.Revision,
	}, nil
}
