package apply

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/internal/membership"
)

// UnsupportedError says a committed entry holds a request cairn cannot apply
// the way etcd applies it. Such an entry is never consumed: the consistent
// index stays before it, so the backend never silently differs from what
// etcd would have built from the same log. errors.Is(err, ErrUnsupported).
type UnsupportedError struct {
	Index uint64
	// Kind names the request in words, e.g. "lease grant", "auth enable",
	// "v2 PUT /foo".
	Kind string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("raft entry %d holds a %s request, which cairn cannot apply yet", e.Index, e.Kind)
}

// Is makes errors.Is(err, ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// Check reports whether Normal applies the normal entry e as etcd 3.6 does.
// It returns nil, or an *UnsupportedError naming the request. The start-up
// check runs it over the WAL tail before anything in the data dir changes.
func Check(e raftpb.Entry) error {
	if e.Type != raftpb.EntryNormal || len(e.Data) == 0 {
		return nil
	}
	_, err := decode(e)
	return err
}

// decode returns the request an entry's data holds, translating the legacy
// v2 membership writes etcd 3.x logged into their v3 form as etcd 3.6 does,
// and an *UnsupportedError for anything cairn does not apply; with that error
// the request is still returned when it decoded.
func decode(e raftpb.Entry) (*pb.InternalRaftRequest, error) {
	req := &pb.InternalRaftRequest{}
	if err := req.Unmarshal(e.Data); err != nil {
		var r pb.Request
		if err := r.Unmarshal(e.Data); err != nil {
			return nil, &UnsupportedError{Index: e.Index, Kind: "undecodable"}
		}
		return fromV2(e.Index, &r)
	}
	if req.V2 != nil {
		return fromV2(e.Index, req.V2)
	}
	if kind, ok := requestKind(req); !ok {
		return req, &UnsupportedError{Index: e.Index, Kind: kind}
	}
	return req, nil
}

// requestKind names the request req carries and reports whether the applier
// handles it.
func requestKind(req *pb.InternalRaftRequest) (string, bool) {
	switch {
	case req.Put != nil, req.DeleteRange != nil, req.Txn != nil, req.Range != nil, req.Compaction != nil,
		req.ClusterMemberAttrSet != nil, req.ClusterVersionSet != nil, req.Alarm != nil, isLease(req):
		return "", true
	}
	return fieldKind(req), false
}

// isLease reports whether req is a lease request (applied through the
// lessor, lease.go).
func isLease(req *pb.InternalRaftRequest) bool {
	return req.LeaseGrant != nil || req.LeaseRevoke != nil || req.LeaseCheckpoint != nil
}

// fieldKind names the first request field set in req after its protobuf
// field name ("lease_grant" → "lease grant"), so a request kind added to the
// API in a later etcd release is still named, not just "unknown".
func fieldKind(req *pb.InternalRaftRequest) string {
	v := reflect.ValueOf(req).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Type.Kind() != reflect.Pointer || v.Field(i).IsNil() || f.Name == "Header" {
			continue
		}
		for _, part := range strings.Split(f.Tag.Get("protobuf"), ",") {
			if name, ok := strings.CutPrefix(part, "name="); ok {
				return strings.ReplaceAll(name, "_", " ")
			}
		}
		return f.Name
	}
	return "empty"
}

// v2 paths etcd 3.x wrote membership through; etcd 3.6 applies these two
// and refuses every other v2 request.
var v2MemberAttrPath = regexp.MustCompile(`^/0/members/([[:xdigit:]]{1,16})/attributes$`)

const v2ClusterVersionPath = "/0/version"

func fromV2(index uint64, r *pb.Request) (*pb.InternalRaftRequest, error) {
	unsupported := &UnsupportedError{Index: index, Kind: fmt.Sprintf("v2 %s %s", r.Method, r.Path)}
	if r.Method != http.MethodPut {
		return nil, unsupported
	}
	if r.Path == v2ClusterVersionPath {
		return &pb.InternalRaftRequest{
			Header:            &pb.RequestHeader{ID: r.ID},
			ClusterVersionSet: &membershippb.ClusterVersionSetRequest{Ver: r.Val},
		}, nil
	}
	m := v2MemberAttrPath.FindStringSubmatch(r.Path)
	if m == nil {
		return nil, unsupported
	}
	id, err := membership.ParseID(m[1])
	if err != nil {
		return nil, unsupported
	}
	var attr membership.Attributes
	if err := json.Unmarshal([]byte(r.Val), &attr); err != nil {
		return nil, &UnsupportedError{Index: index, Kind: fmt.Sprintf("v2 %s %s with malformed attributes", r.Method, r.Path)}
	}
	return &pb.InternalRaftRequest{
		Header: &pb.RequestHeader{ID: r.ID},
		ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
			Member_ID:        id,
			MemberAttributes: &membershippb.Attributes{Name: attr.Name, ClientUrls: attr.ClientURLs},
		},
	}, nil
}
