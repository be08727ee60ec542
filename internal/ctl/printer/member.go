package printer

import (
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Member changes print in the simple, json and protobuf formats only
// (fields and table answer "<format> not supported as output format",
// after the change is made, as etcdctl's do). json ignores --hex here.

// MemberAdd prints the new member's ID and cluster, then the settings to
// start it with: its name, every member's peer URLs as name=url (the
// others' published names, the new one's given name), the peer URLs as
// given, and state "existing".
func (s *Simple) MemberAdd(a MemberAdd) error {
	r := a.Resp
	as := ""
	if r.Member.IsLearner {
		as = " as learner"
	}
	s.printf("Member %16x added%s to cluster %16x\n", r.Member.ID, as, r.Header.ClusterId)
	var pairs []string
	for _, m := range r.Members {
		name := m.Name
		if m.ID == r.Member.ID {
			name = a.Name
		}
		for _, u := range m.PeerURLs {
			pairs = append(pairs, name+"="+u)
		}
	}
	s.println()
	s.printf("ETCD_NAME=%q\n", a.Name)
	s.printf("ETCD_INITIAL_CLUSTER=%q\n", strings.Join(pairs, ","))
	s.printf("ETCD_INITIAL_ADVERTISE_PEER_URLS=%q\n", a.PeerURLs)
	s.printf("ETCD_INITIAL_CLUSTER_STATE=%q\n", "existing")
	return nil
}

func (s *Simple) MemberRemove(id uint64, r clientv3.MemberRemoveResponse) error {
	s.printf("Member %16x removed from cluster %16x\n", id, r.Header.ClusterId)
	return nil
}

func (s *Simple) MemberUpdate(id uint64, r clientv3.MemberUpdateResponse) error {
	s.printf("Member %16x updated in cluster %16x\n", id, r.Header.ClusterId)
	return nil
}

func (s *Simple) MemberPromote(id uint64, r clientv3.MemberPromoteResponse) error {
	s.printf("Member %16x promoted in cluster %16x\n", id, r.Header.ClusterId)
	return nil
}

func (p *jsonPrinter) MemberAdd(a MemberAdd) error {
	p.printJSON((*pb.MemberAddResponse)(&a.Resp))
	return nil
}

func (p *jsonPrinter) MemberRemove(_ uint64, r clientv3.MemberRemoveResponse) error {
	p.printJSON((*pb.MemberRemoveResponse)(&r))
	return nil
}

func (p *jsonPrinter) MemberUpdate(_ uint64, r clientv3.MemberUpdateResponse) error {
	p.printJSON((*pb.MemberUpdateResponse)(&r))
	return nil
}

func (p *jsonPrinter) MemberPromote(_ uint64, r clientv3.MemberPromoteResponse) error {
	p.printJSON((*pb.MemberPromoteResponse)(&r))
	return nil
}

func (p *protobufPrinter) MemberAdd(a MemberAdd) error {
	return p.write((*pb.MemberAddResponse)(&a.Resp))
}

func (p *protobufPrinter) MemberRemove(_ uint64, r clientv3.MemberRemoveResponse) error {
	return p.write((*pb.MemberRemoveResponse)(&r))
}

func (p *protobufPrinter) MemberUpdate(_ uint64, r clientv3.MemberUpdateResponse) error {
	return p.write((*pb.MemberUpdateResponse)(&r))
}

func (p *protobufPrinter) MemberPromote(_ uint64, r clientv3.MemberPromoteResponse) error {
	return p.write((*pb.MemberPromoteResponse)(&r))
}
