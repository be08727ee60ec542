package printer

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Watch prints a response's events: each event's type, then the previous
// key-value pair when present, then the key-value pair.
func (s *Simple) Watch(r clientv3.WatchResponse) error {
	for _, e := range r.Events {
		s.println(e.Type)
		if e.PrevKv != nil {
			s.kv(e.PrevKv)
		}
		s.kv(e.Kv)
	}
	return nil
}

func (p *Fields) Watch(r clientv3.WatchResponse) error {
	p.hdr(&r.Header)
	for _, e := range r.Events {
		p.println(`"Type" :`, e.Type)
		if e.PrevKv != nil {
			p.kv("Prev", e.PrevKv)
		}
		p.kv("", e.Kv)
	}
	return nil
}

// Watch marshals clientv3's response struct itself (its Go field names).
func (p *jsonPrinter) Watch(r clientv3.WatchResponse) error {
	p.printJSON(&r)
	return nil
}

// Watch writes the wire response rebuilt from clientv3's (without the watch
// ID and fragment flag, which clientv3 does not keep), as etcdctl does.
func (p *protobufPrinter) Watch(r clientv3.WatchResponse) error {
	evs := make([]*mvccpb.Event, len(r.Events))
	for i, ev := range r.Events {
		evs[i] = (*mvccpb.Event)(ev)
	}
	return p.write(&pb.WatchResponse{Header: &r.Header, Events: evs, CompactRevision: r.CompactRevision,
		Canceled: r.Canceled, Created: r.Created})
}
