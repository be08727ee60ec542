package printer

import (
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// protobufPrinter writes the marshalled response, with no framing.
type protobufPrinter struct {
	unsupported
	output
}

type marshaler interface{ Marshal() ([]byte, error) }

func (p *protobufPrinter) write(m marshaler) error {
	b, err := m.Marshal()
	if err != nil {
		fmt.Fprintf(p.errw, "%v\n", err)
		return nil
	}
	_, _ = p.w.Write(b)
	return nil
}

func (p *protobufPrinter) Get(r clientv3.GetResponse) error {
	return p.write((*pb.RangeResponse)(&r))
}

func (p *protobufPrinter) Put(r clientv3.PutResponse) error {
	return p.write((*pb.PutResponse)(&r))
}

func (p *protobufPrinter) Del(r clientv3.DeleteResponse) error {
	return p.write((*pb.DeleteRangeResponse)(&r))
}

func (p *protobufPrinter) Txn(r clientv3.TxnResponse) error {
	return p.write((*pb.TxnResponse)(&r))
}

func (p *protobufPrinter) MemberList(r clientv3.MemberListResponse) error {
	return p.write((*pb.MemberListResponse)(&r))
}

func (p *protobufPrinter) Alarm(r clientv3.AlarmResponse) error {
	return p.write((*pb.AlarmResponse)(&r))
}
