package v2store

import (
	"bytes"
	"encoding/json"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// A v2 write travels through raft as a v3 Txn that etcd 3.6 applies as a
// no-op (docs/architecture.md, "v2 data"): one VALUE compare on CarrierKey
// whose value is the encoded Request, and no operations in either branch.
// Whatever the compare evaluates to, the txn changes nothing: no revision,
// no key, no watch event, no HashKV change, on cairn and etcd members alike.
// Clients never make such an entry: read-only txns are served without raft,
// by cairn and by etcd.

// CarrierKey is the key the carrier's compare names. No v3 key is written
// under it.
var CarrierKey = []byte("\x00cairn/v2")

// carrierMagic starts the compare value, with the format version.
var carrierMagic = []byte("cairn-v2/1\x00")

// Bucket is the bbolt bucket holding the v2 tree (one record per node plus
// IndexKey), written in the same backend transaction as the consistent
// index of the entry that changed it. etcd 3.6 ignores it.
var Bucket = []byte("cairn_v2")

// Carrier returns the Txn that carries r.
func Carrier(r *Request) (*pb.TxnRequest, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	v := append(append([]byte(nil), carrierMagic...), b...)
	return &pb.TxnRequest{Compare: []*pb.Compare{{
		Result: pb.Compare_EQUAL, Target: pb.Compare_VALUE, Key: CarrierKey,
		TargetUnion: &pb.Compare_Value{Value: v},
	}}}, nil
}

// FromCarrier returns the Request a Txn carries, or nil when t is not a
// carrier.
func FromCarrier(t *pb.TxnRequest) *Request {
	if len(t.Compare) != 1 || len(t.Success) != 0 || len(t.Failure) != 0 {
		return nil
	}
	c := t.Compare[0]
	if c.Target != pb.Compare_VALUE || len(c.RangeEnd) != 0 || !bytes.Equal(c.Key, CarrierKey) {
		return nil
	}
	v, ok := bytes.CutPrefix(c.GetValue(), carrierMagic)
	if !ok {
		return nil
	}
	r := &Request{}
	if json.Unmarshal(v, r) != nil {
		return nil
	}
	return r
}
