package printer

import (
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// MoveLeaderPrinter prints `move-leader`'s result. The simple, json and
// protobuf printers implement it; fields and table do not (etcdctl says
// "not supported as output format").
type MoveLeaderPrinter interface {
	MoveLeader(leader, target uint64, r clientv3.MoveLeaderResponse) error
}

var (
	_ MoveLeaderPrinter = (*Simple)(nil)
	_ MoveLeaderPrinter = (*jsonPrinter)(nil)
	_ MoveLeaderPrinter = (*protobufPrinter)(nil)
)

// MoveLeader prints "Leadership transferred from <leader> to <target>".
func (s *Simple) MoveLeader(leader, target uint64, _ clientv3.MoveLeaderResponse) error {
	fmt.Fprintf(s.w, "Leadership transferred from %s to %s\n", types.ID(leader), types.ID(target))
	return nil
}

func (p *jsonPrinter) MoveLeader(_, _ uint64, r clientv3.MoveLeaderResponse) error {
	p.printJSON((*pb.MoveLeaderResponse)(&r))
	return nil
}

func (p *protobufPrinter) MoveLeader(_, _ uint64, r clientv3.MoveLeaderResponse) error {
	return p.write((*pb.MoveLeaderResponse)(&r))
}
