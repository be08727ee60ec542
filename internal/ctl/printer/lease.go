package printer

import (
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// LeasePrinter shows the results of `lease` commands. etcdctl's table
// format shows none of them; its protobuf format writes only the response
// header of all but revoke, whose response it cannot marshal at all.
type LeasePrinter interface {
	LeaseGrant(clientv3.LeaseGrantResponse) error
	LeaseRevoke(clientv3.LeaseID, clientv3.LeaseRevokeResponse) error
	LeaseKeepAlive(clientv3.LeaseKeepAliveResponse) error
	// LeaseTimeToLive shows the attached keys when keys is set.
	LeaseTimeToLive(r clientv3.LeaseTimeToLiveResponse, keys bool) error
	LeaseList(clientv3.LeaseLeasesResponse) error
}

func (u unsupported) LeaseGrant(clientv3.LeaseGrantResponse) error { return u.err() }
func (u unsupported) LeaseRevoke(clientv3.LeaseID, clientv3.LeaseRevokeResponse) error {
	return u.err()
}
func (u unsupported) LeaseKeepAlive(clientv3.LeaseKeepAliveResponse) error { return u.err() }
func (u unsupported) LeaseTimeToLive(clientv3.LeaseTimeToLiveResponse, bool) error {
	return u.err()
}
func (u unsupported) LeaseList(clientv3.LeaseLeasesResponse) error { return u.err() }

func (s *Simple) LeaseGrant(r clientv3.LeaseGrantResponse) error {
	s.printf("lease %016x granted with TTL(%ds)\n", r.ID, r.TTL)
	return nil
}

func (s *Simple) LeaseRevoke(id clientv3.LeaseID, _ clientv3.LeaseRevokeResponse) error {
	s.printf("lease %016x revoked\n", id)
	return nil
}

func (s *Simple) LeaseKeepAlive(r clientv3.LeaseKeepAliveResponse) error {
	s.printf("lease %016x keepalived with TTL(%d)\n", r.ID, r.TTL)
	return nil
}

// LeaseTimeToLive: a lease the server does not know comes back with TTL -1
// and no granted TTL.
func (s *Simple) LeaseTimeToLive(r clientv3.LeaseTimeToLiveResponse, keys bool) error {
	if r.GrantedTTL == 0 && r.TTL == -1 {
		s.printf("lease %016x already expired\n", r.ID)
		return nil
	}
	txt := fmt.Sprintf("lease %016x granted with TTL(%ds), remaining(%ds)", r.ID, r.GrantedTTL, r.TTL)
	if keys {
		ks := make([]string, len(r.Keys))
		for i, k := range r.Keys {
			ks[i] = string(k)
		}
		txt += fmt.Sprintf(", attached keys(%v)", ks)
	}
	s.println(txt)
	return nil
}

func (s *Simple) LeaseList(r clientv3.LeaseLeasesResponse) error {
	s.printf("found %d leases\n", len(r.Leases))
	for _, l := range r.Leases {
		s.printf("%016x\n", l.ID)
	}
	return nil
}

// The JSON format marshals the client's response structs, whose embedded
// header flattens into the top level (etcdctl's output).

func (p *jsonPrinter) LeaseGrant(r clientv3.LeaseGrantResponse) error { p.printJSON(r); return nil }
func (p *jsonPrinter) LeaseRevoke(_ clientv3.LeaseID, r clientv3.LeaseRevokeResponse) error {
	p.printJSON(r)
	return nil
}
func (p *jsonPrinter) LeaseKeepAlive(r clientv3.LeaseKeepAliveResponse) error {
	p.printJSON(r)
	return nil
}
func (p *jsonPrinter) LeaseTimeToLive(r clientv3.LeaseTimeToLiveResponse, _ bool) error {
	p.printJSON(&r)
	return nil
}
func (p *jsonPrinter) LeaseList(r clientv3.LeaseLeasesResponse) error { p.printJSON(&r); return nil }

func (p *Fields) leaseID(id clientv3.LeaseID) {
	if p.hex {
		p.printf("\"ID\" : %016x\n", id)
	} else {
		p.println(`"ID" :`, id)
	}
}

func (p *Fields) LeaseGrant(r clientv3.LeaseGrantResponse) error {
	p.hdr(r.ResponseHeader)
	p.leaseID(r.ID)
	p.println(`"TTL" :`, r.TTL)
	return nil
}

func (p *Fields) LeaseRevoke(_ clientv3.LeaseID, r clientv3.LeaseRevokeResponse) error {
	p.hdr(r.Header)
	return nil
}

func (p *Fields) LeaseKeepAlive(r clientv3.LeaseKeepAliveResponse) error {
	p.hdr(r.ResponseHeader)
	p.leaseID(r.ID)
	p.println(`"TTL" :`, r.TTL)
	return nil
}

func (p *Fields) LeaseTimeToLive(r clientv3.LeaseTimeToLiveResponse, _ bool) error {
	p.hdr(r.ResponseHeader)
	p.leaseID(r.ID)
	p.println(`"TTL" :`, r.TTL)
	p.println(`"GrantedTTL" :`, r.GrantedTTL)
	for _, k := range r.Keys {
		p.printf("\"Key\" : %q\n", string(k))
	}
	return nil
}

func (p *Fields) LeaseList(r clientv3.LeaseLeasesResponse) error {
	p.hdr(r.ResponseHeader)
	for _, l := range r.Leases {
		p.leaseID(l.ID)
	}
	return nil
}

// The client's lease responses embed *pb.ResponseHeader, whose Marshal is
// what etcdctl's protobuf printer finds on them: it writes the header only.
// The revoke response is a plain struct without Marshal, and etcdctl exits
// with the type it could not marshal.

func (p *protobufPrinter) LeaseGrant(r clientv3.LeaseGrantResponse) error {
	return p.write(r.ResponseHeader)
}

func (p *protobufPrinter) LeaseRevoke(_ clientv3.LeaseID, r clientv3.LeaseRevokeResponse) error {
	return &UnsupportedError{Format: "protobuf", Text: fmt.Sprintf("marshal unsupported for type %T (%v)", r, r)}
}

func (p *protobufPrinter) LeaseKeepAlive(r clientv3.LeaseKeepAliveResponse) error {
	return p.write(r.ResponseHeader)
}

func (p *protobufPrinter) LeaseTimeToLive(r clientv3.LeaseTimeToLiveResponse, _ bool) error {
	return p.write(r.ResponseHeader)
}

func (p *protobufPrinter) LeaseList(r clientv3.LeaseLeasesResponse) error {
	return p.write(r.ResponseHeader)
}
