package printer

import (
	"encoding/hex"
	"fmt"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Simple is the default format: plain lines, keys and values as raw bytes
// (or \x-escaped with --hex).
type Simple struct {
	unsupported
	output
	// ValueOnly prints values without their keys (get --print-value-only).
	ValueOnly bool
}

func (s *Simple) kv(kv *mvccpb.KeyValue) {
	k, v := string(kv.Key), string(kv.Value)
	if s.hex {
		k, v = hexEscape(kv.Key), hexEscape(kv.Value)
	}
	if !s.ValueOnly {
		s.println(k)
	}
	s.println(v)
}

// hexEscape writes every byte as \xNN.
func hexEscape(b []byte) string {
	h := hex.EncodeToString(b)
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		sb.WriteString(`\x`)
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

func (s *Simple) Get(r clientv3.GetResponse) error {
	for _, kv := range r.Kvs {
		s.kv(kv)
	}
	return nil
}

func (s *Simple) Put(r clientv3.PutResponse) error {
	s.println("OK")
	if r.PrevKv != nil {
		s.kv(r.PrevKv)
	}
	return nil
}

func (s *Simple) Del(r clientv3.DeleteResponse) error {
	s.println(r.Deleted)
	for _, kv := range r.PrevKvs {
		s.kv(kv)
	}
	return nil
}

func (s *Simple) Txn(r clientv3.TxnResponse) error {
	if r.Succeeded {
		s.println("SUCCESS")
	} else {
		s.println("FAILURE")
	}
	for _, op := range r.Responses {
		s.println("")
		switch v := op.Response.(type) {
		case *pb.ResponseOp_ResponseDeleteRange:
			_ = s.Del(clientv3.DeleteResponse(*v.ResponseDeleteRange))
		case *pb.ResponseOp_ResponsePut:
			_ = s.Put(clientv3.PutResponse(*v.ResponsePut))
		case *pb.ResponseOp_ResponseRange:
			_ = s.Get(clientv3.GetResponse(*v.ResponseRange))
		default:
			s.printf("unexpected response %+v\n", op)
		}
	}
	return nil
}

// EndpointHealth prints healthy endpoints to stdout, unhealthy ones to stderr.
func (s *Simple) EndpointHealth(hs []EndpointHealth) error {
	for _, h := range hs {
		if h.Error == "" {
			s.printf("%s is healthy: successfully committed proposal: took = %v\n", h.Ep, h.Took)
		} else {
			fmt.Fprintf(s.errw, "%s is unhealthy: failed to commit proposal: %v\n", h.Ep, h.Error)
		}
	}
	return nil
}

func (s *Simple) EndpointStatus(ss []EndpointStatus) error {
	_, rows := endpointStatusTable(ss)
	s.rows(rows)
	return nil
}

func (s *Simple) EndpointHashKV(hs []EndpointHashKV) error {
	_, rows := endpointHashKVTable(hs)
	s.rows(rows)
	return nil
}

func (s *Simple) rows(rows [][]string) {
	for _, row := range rows {
		s.println(strings.Join(row, ", "))
	}
}

func (s *Simple) MemberList(r clientv3.MemberListResponse) error {
	_, rows := memberListTable(r)
	s.rows(rows)
	return nil
}

// Alarm prints each alarm with %+v: the protobuf's compact text form,
// "memberID:<n> alarm:NOSPACE " (trailing space included).
func (s *Simple) Alarm(r clientv3.AlarmResponse) error {
	for _, al := range r.Alarms {
		s.printf("%+v\n", al)
	}
	return nil
}

func (s *Simple) DBStatus(ds DBStatus) error {
	_, rows := dbStatusTable(ds)
	s.rows(rows)
	return nil
}

func (s *Simple) DBHashKV(h DBHashKV) error {
	_, rows := dbHashKVTable(h)
	s.rows(rows)
	return nil
}
