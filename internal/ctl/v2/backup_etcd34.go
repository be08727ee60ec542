package ctlv2

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/internal/v2store"
)

// etcd 3.4 and older keep the v2 keys in their own v2 store: a JSON tree in
// the raft snapshot (.snap) and v2 requests (etcdserverpb.Request, bare or
// inside an InternalRaftRequest) in the WAL after it. Its top level holds
// /0 (membership), /1 (the keys clients see, under /v2/keys) and /2 (v2
// auth). The backup translates /1 into cairn's tree: the nodes with their
// values, directories, created and modified indexes and absolute
// expirations, the store index, and the requests of the WAL tail applied in
// log order as etcd applied them.

// Top-level directories of etcd's v2 store.
const (
	etcdV2Membership = "/0"
	etcdV2Keys       = "/1"
	etcdV2Auth       = "/2"
)

// errUntranslatable names v2 state the backup cannot carry into cairn.
var errUntranslatable = errors.New("cannot be carried into cairn's v2 store")

// etcdNode is a node of etcd's v2 store JSON: a directory has Children
// (possibly empty), a file has none (null).
type etcdNode struct {
	Path          string
	CreatedIndex  uint64
	ModifiedIndex uint64
	ExpireTime    time.Time
	Value         string
	Children      map[string]*etcdNode
}

type etcdStore struct {
	Root       *etcdNode
	WatcherHub struct {
		EventHistory struct {
			Queue struct {
				Events      []*v2store.ImportEvent // a ring: Size events from Front
				Size, Front int
			}
		}
	}
	CurrentIndex   uint64
	CurrentVersion int
}

// etcdHistory returns etcd's watch history, oldest first, with the /1
// prefix taken off the keys of events on its key space. Events on
// membership records keep their place (where the history starts decides
// which waitIndex gets 401) but, as refreshes do, never answer a watch: no
// /v2/keys watch of etcd's ever sees them.
func etcdHistory(st *etcdStore) []v2store.ImportEvent {
	q := st.WatcherHub.EventHistory.Queue
	var out []v2store.ImportEvent
	for i := 0; i < q.Size && len(q.Events) > 0; i++ {
		e := q.Events[(q.Front+i)%len(q.Events)]
		if e == nil || e.Event == nil || e.Node == nil {
			continue
		}
		if !stripKeys(e.Node) || (e.PrevNode != nil && !stripKeys(e.PrevNode)) {
			e.Refresh = true
		}
		out = append(out, *e)
	}
	return out
}

// stripKeys takes etcd's /1 prefix off n's key (and its children's); false
// when n is not in the key space.
func stripKeys(n *v2store.Node) bool {
	k, ok := strings.CutPrefix(n.Key, etcdV2Keys)
	if !ok || (k != "" && k[0] != '/') {
		return false
	}
	if k == "" {
		k = "/"
	}
	n.Key = k
	for _, c := range n.Nodes {
		if !stripKeys(c) {
			return false
		}
	}
	return true
}

// etcdV2Tree reads the v2 store of an etcd .snap into a cairn tree: the
// nodes under /1 and etcd's store index. A store holding v2 auth data or
// top-level entries etcd does not write is refused, naming them.
func etcdV2Tree(data []byte) (*v2store.Store, error) {
	var st etcdStore
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("etcd v2 store: %w", err)
	}
	if st.CurrentVersion != 0 && st.CurrentVersion != 2 {
		return nil, fmt.Errorf("etcd v2 store of version %d %w", st.CurrentVersion, errUntranslatable)
	}
	var nodes []v2store.ImportNode
	if st.Root != nil {
		for name, c := range st.Root.Children {
			switch "/" + name {
			case etcdV2Membership, etcdV2Keys:
			case etcdV2Auth:
				if len(c.Children) > 0 {
					return nil, fmt.Errorf("etcd v2 auth data (%s: %s) %w: cairn has no v2 auth; disable it with etcd first (etcdctl auth disable)",
						etcdV2Auth, strings.Join(sortedNames(c.Children), ", "), errUntranslatable)
				}
			default:
				return nil, fmt.Errorf("etcd v2 store entry /%s (not membership, keys or auth) %w", name, errUntranslatable)
			}
		}
		if keys := st.Root.Children["1"]; keys != nil {
			if err := collectEtcdNodes(keys, &nodes); err != nil {
				return nil, err
			}
		}
	}
	s := v2store.New()
	if err := s.Import(nodes, etcdHistory(&st), st.CurrentIndex); err != nil {
		return nil, fmt.Errorf("etcd v2 store: %w", err)
	}
	return s, nil
}

// collectEtcdNodes appends dir's subtree, parents first, paths without /1.
func collectEtcdNodes(dir *etcdNode, out *[]v2store.ImportNode) error {
	for _, name := range sortedNames(dir.Children) {
		c := dir.Children[name]
		if c == nil {
			continue
		}
		p, ok := strings.CutPrefix(c.Path, etcdV2Keys+"/")
		if !ok || c.Path != dir.Path+"/"+name {
			return fmt.Errorf("etcd v2 node %q under %q %w", c.Path, dir.Path, errUntranslatable)
		}
		n := v2store.ImportNode{Path: "/" + p, Dir: c.Children != nil, Value: c.Value,
			Created: c.CreatedIndex, Modified: c.ModifiedIndex}
		if !c.ExpireTime.IsZero() {
			n.Expire = c.ExpireTime
		}
		*out = append(*out, n)
		if c.Children != nil {
			if err := collectEtcdNodes(c, out); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedNames(m map[string]*etcdNode) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// etcdEntryRequest decodes a WAL entry as etcd does: an InternalRaftRequest
// when the bytes parse as one, else a bare v2 Request. v2 is the entry's v2
// request (nil if none).
func etcdEntryRequest(data []byte) (internal *pb.InternalRaftRequest, v2 *pb.Request, err error) {
	var req pb.InternalRaftRequest
	if err := req.Unmarshal(data); err == nil {
		return &req, req.V2, nil
	}
	var r pb.Request
	if err := r.Unmarshal(data); err != nil {
		return nil, nil, fmt.Errorf("neither an etcd v3 nor v2 request: %w", err)
	}
	return nil, &r, nil
}

// applyEtcdV2Entry replays one committed entry of an etcd WAL tail on the
// translated tree: a v2 write under /1 is applied (a failed one changes
// nothing, as in etcd), one under /0 (membership) and a conf change only
// advance the index by the writes etcd made to its store for them.
func applyEtcdV2Entry(s *v2store.Store, e raftpb.Entry) error {
	switch e.Type {
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			return fmt.Errorf("conf change: %w", err)
		}
		// etcd 3.4 records a member's add, update and promotion as one v2
		// write, its removal as two (the member's directory deleted, the
		// removed_members record created).
		n := 1
		if cc.Type == raftpb.ConfChangeRemoveNode {
			n = 2
		}
		for range n {
			s.SkipIndex()
		}
		return nil
	case raftpb.EntryConfChangeV2:
		return fmt.Errorf("a ConfChangeV2 entry (etcd 3.4 does not write them) %w", errUntranslatable)
	}
	if len(e.Data) == 0 {
		return nil
	}
	_, r, err := etcdEntryRequest(e.Data)
	if err != nil || r == nil {
		return err
	}
	req, err := etcdV2Request(r)
	if err != nil || req == nil {
		return err
	}
	if req.Op == "" { // a membership write
		s.SkipIndex()
		return nil
	}
	// A failed write leaves the tree as etcd left it; its error is etcd's
	// answer to the client, not the backup's.
	_, _, err = s.Apply(req, time.Now())
	var v2err *v2store.Error
	if err != nil && !errors.As(err, &v2err) {
		return err
	}
	return nil
}

// etcdV2Request translates an etcd v2 request as etcd 3.4 applies it. nil:
// no change (reads); a Request without Op: a membership write.
func etcdV2Request(r *pb.Request) (*v2store.Request, error) {
	write := r.Method == "PUT" || r.Method == "POST" || r.Method == "DELETE"
	switch {
	case r.Method == "GET" || r.Method == "QGET" || r.Method == "HEAD":
		return nil, nil
	case r.Method == "SYNC":
		return &v2store.Request{Op: v2store.OpExpire, Time: r.Time}, nil
	case !write:
		return nil, fmt.Errorf("an etcd v2 request %s %s %w", r.Method, r.Path, errUntranslatable)
	case r.Path == etcdV2Membership || strings.HasPrefix(r.Path, etcdV2Membership+"/"):
		return &v2store.Request{}, nil
	case r.Path == etcdV2Keys:
		r = cloneWithPath(r, "/")
	case strings.HasPrefix(r.Path, etcdV2Keys+"/"):
		r = cloneWithPath(r, r.Path[len(etcdV2Keys):])
	case r.Path == etcdV2Auth || strings.HasPrefix(r.Path, etcdV2Auth+"/"):
		return nil, fmt.Errorf("an etcd v2 auth write (%s %s) %w: cairn has no v2 auth", r.Method, r.Path, errUntranslatable)
	default:
		return nil, fmt.Errorf("an etcd v2 write outside the key space (%s %s) %w", r.Method, r.Path, errUntranslatable)
	}
	out := &v2store.Request{Path: r.Path, Value: r.Val, Dir: r.Dir, Expire: r.Expiration,
		Refresh: r.Refresh != nil && *r.Refresh}
	cond := r.PrevIndex > 0 || r.PrevValue != ""
	switch r.Method {
	case "POST":
		out.Op, out.Unique = v2store.OpCreate, true
	case "PUT":
		switch {
		case r.PrevExist != nil && *r.PrevExist && !cond:
			out.Op = v2store.OpUpdate
		case r.PrevExist != nil && !*r.PrevExist:
			out.Op = v2store.OpCreate
		case cond:
			out.Op, out.PrevValue, out.PrevIndex = v2store.OpCAS, r.PrevValue, r.PrevIndex
		default:
			out.Op = v2store.OpSet
		}
	case "DELETE":
		if cond {
			out.Op, out.PrevValue, out.PrevIndex = v2store.OpCAD, r.PrevValue, r.PrevIndex
		} else {
			out.Op, out.Recursive = v2store.OpDelete, r.Recursive
		}
	}
	return out, nil
}

func cloneWithPath(r *pb.Request, p string) *pb.Request {
	c := *r
	c.Path = p
	return &c
}
