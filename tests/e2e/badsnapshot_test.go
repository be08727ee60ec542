package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/tests/framework"
)

// A snapshot whose database is cut short, belongs to another index, or
// whose upload breaks off, is refused by the receiving member with etcd's
// status and text: the member keeps serving, nothing of the upload stays in
// its snap directory, and its data is the cluster's (same HashKV). Before
// cairn verified received databases, the truncated one made bbolt panic in
// the member (a page assertion on the zeroes past the end of the file).
func TestBadSnapshotUploadRefused(t *testing.T) {
	c := framework.NewCluster(t, []string{framework.Cairn(t)}, 3)
	c.Start(60 * time.Second)
	cl := c.Client()
	defer cl.Close()
	for i := range 200 {
		if _, err := cl.Put(ctxT(t), fmt.Sprintf("k%03d", i), strings.Repeat("v", 500)); err != nil {
			t.Fatal(err)
		}
	}
	lead := c.Leader(30 * time.Second)
	follower := (lead + 1) % 3
	fm := c.Members[follower]
	fc := fm.Client3()
	defer fc.Close()

	ml, err := fc.MemberList(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := fc.Status(ctxT(t), fm.Client)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := c.Members[lead].Client3().Status(ctxT(t), c.Members[lead].Client)
	if err != nil {
		t.Fatal(err)
	}
	var voters []uint64
	for _, m := range ml.Members {
		voters = append(voters, m.ID)
	}
	rc, err := fc.Snapshot(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	db, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}

	msg := raftpb.Message{Type: raftpb.MsgSnap, From: ls.Header.MemberId, To: st.Header.MemberId, Term: ls.RaftTerm,
		Snapshot: &raftpb.Snapshot{
			Metadata: raftpb.SnapshotMetadata{Index: ls.RaftIndex + 1000, Term: ls.RaftTerm, ConfState: raftpb.ConfState{Voters: voters}},
			Data:     []byte(`{"Root":{}}`),
		}}
	mb, err := msg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	envelope := binary.BigEndian.AppendUint64(nil, uint64(len(mb)))
	envelope = append(envelope, mb...)
	header := http.Header{
		"Content-Type":          {"application/octet-stream"},
		"X-Server-From":         {fmt.Sprintf("%x", ls.Header.MemberId)},
		"X-Server-Version":      {"3.6.16"},
		"X-Min-Cluster-Version": {"3.0.0"},
		"X-Etcd-Cluster-ID":     {fmt.Sprintf("%x", st.Header.ClusterId)},
		"X-PeerURLs":            {c.Members[lead].Peer},
	}
	post := func(body []byte) (int, string) {
		t.Helper()
		req, err := http.NewRequest("POST", fm.Peer+"/raft/snapshot", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("the member did not answer: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	snapDir := filepath.Join(fm.DataDir, "member", "snap")
	checkUnharmed := func(what string) {
		t.Helper()
		select {
		case <-fm.Done():
			t.Fatalf("%s: the member exited:\n%s", what, fm.Log())
		default:
		}
		if left := leftovers(t, snapDir); len(left) > 0 {
			t.Errorf("%s: %v left in the snap directory", what, left)
		}
		if _, err := fc.Put(ctxT(t), "after/"+what, "ok"); err != nil {
			t.Fatalf("%s: the member does not serve writes: %v", what, err)
		}
	}

	for _, tc := range []struct {
		name string
		db   []byte
		want string
	}{
		{"truncated", db[:len(db)/2], "database file is damaged"},
		{"only the meta pages", db[:8192], "database file is damaged"},
		{"another index", db, "has consistent index"},
	} {
		code, body := post(append(append([]byte(nil), envelope...), tc.db...))
		if code != http.StatusInternalServerError || !strings.HasPrefix(body, "failed to save KV snapshot (") || !strings.Contains(body, tc.want) {
			t.Errorf("%s: got %d %q, want 500 \"failed to save KV snapshot (...%s...)\"", tc.name, code, body, tc.want)
		}
		checkUnharmed(tc.name)
	}

	// An upload that breaks off: the body is announced whole, half of it
	// is sent, and the connection closes.
	conn, err := net.Dial("tcp", strings.TrimPrefix(fm.Peer, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST /raft/snapshot HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", fm.Host, len(envelope)+len(db))
	for k, vs := range header {
		fmt.Fprintf(&req, "%s: %s\r\n", k, vs[0])
	}
	req.WriteString("\r\n")
	req.Write(envelope)
	req.Write(db[:len(db)/2])
	if _, err := conn.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	// Three refusals were logged above; this is the fourth.
	waitUntil(t, "the broken-off upload refused", func() bool {
		return strings.Count(fm.Log(), "failed to save KV snapshot") >= 4
	})
	checkUnharmed("broken off")

	// The member holds the cluster's data.
	rev := int64(0)
	for _, m := range c.Members {
		mc := m.Client3()
		st, err := mc.Status(ctxT(t), m.Client)
		mc.Close()
		if err != nil {
			t.Fatal(err)
		}
		rev = max(rev, st.Header.Revision)
	}
	var hashes []uint32
	for _, m := range c.Members {
		mc := m.Client3()
		waitUntil(t, "revision "+fmt.Sprint(rev)+" on "+m.Name, func() bool {
			st, err := mc.Status(ctxT(t), m.Client)
			return err == nil && st.Header.Revision >= rev
		})
		h, err := mc.HashKV(ctxT(t), m.Client, rev)
		mc.Close()
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h.Hash)
	}
	if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
		t.Fatalf("HashKV at %d differs across members: %x", rev, hashes)
	}
}

// leftovers lists what a refused upload might leave in a snap directory:
// anything but the backend ("db") and raft snapshots (".snap").
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.Name() != "db" && !strings.HasSuffix(e.Name(), ".snap") {
			out = append(out, e.Name())
		}
	}
	return out
}
