package printer

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// jsonPrinter marshals the protobuf responses with encoding/json (their
// json tags: snake_case names, bytes in base64, 64-bit numbers as numbers).
type jsonPrinter struct {
	unsupported
	output
}

func (p *jsonPrinter) Get(r clientv3.GetResponse) error {
	p.printJSON((*pb.RangeResponse)(&r))
	return nil
}

func (p *jsonPrinter) Put(r clientv3.PutResponse) error {
	p.printJSON((*pb.PutResponse)(&r))
	return nil
}

func (p *jsonPrinter) Del(r clientv3.DeleteResponse) error {
	p.printJSON((*pb.DeleteRangeResponse)(&r))
	return nil
}

func (p *jsonPrinter) Txn(r clientv3.TxnResponse) error {
	p.printJSON((*pb.TxnResponse)(&r))
	return nil
}

func (p *jsonPrinter) EndpointHealth(hs []EndpointHealth) error { p.printJSON(hs); return nil }
func (p *jsonPrinter) EndpointStatus(ss []EndpointStatus) error { p.printJSON(ss); return nil }
func (p *jsonPrinter) EndpointHashKV(hs []EndpointHashKV) error { p.printJSON(hs); return nil }
