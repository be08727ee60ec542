package wal_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap/zaptest"

	"github.com/cairnkv/cairn/internal/snap"
	"github.com/cairnkv/cairn/internal/wal"
	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

func mustMarshal(t *testing.T, m interface{ Marshal() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// etcd-dump-logs (etcd's own tool) must list exactly the entries cairn wrote.
func TestEtcdDumpLogsReadsCairnDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the reference etcd tools")
	}
	tools := refs.EtcdTools(t)
	lg := zaptest.NewLogger(t)
	dataDir := t.TempDir()
	walDir := filepath.Join(dataDir, "member", "wal")
	snapDir := filepath.Join(dataDir, "member", "snap")
	ss, err := snap.Open(lg, snapDir)
	if err != nil {
		t.Fatal(err)
	}
	md := mustMarshal(t, &etcdserverpb.Metadata{NodeID: 0x8e9e05c52164694d, ClusterID: 0xcdf818194e3a8c32})
	w, err := wal.Create(lg, walDir, md, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	put := func(id uint64, k, v string) []byte {
		return mustMarshal(t, &etcdserverpb.InternalRaftRequest{
			Header: &etcdserverpb.RequestHeader{ID: id},
			Put:    &etcdserverpb.PutRequest{Key: []byte(k), Value: []byte(v)},
		})
	}
	cc := mustMarshal(t, &raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: 0x8e9e05c52164694d, Context: []byte(`{"id":1}`)})
	ents := []raftpb.Entry{
		{Term: 1, Index: 1, Type: raftpb.EntryConfChange, Data: cc},
		{Term: 2, Index: 2},
		{Term: 2, Index: 3, Data: put(100, "a", "1")},
	}
	if err := w.Save(raftpb.HardState{Term: 2, Vote: 0x8e9e05c52164694d, Commit: 3}, ents); err != nil {
		t.Fatal(err)
	}
	cs := raftpb.ConfState{Voters: []uint64{0x8e9e05c52164694d}}
	if err := ss.SaveSnap(raftpb.Snapshot{Data: []byte(`{}`), Metadata: raftpb.SnapshotMetadata{Index: 3, Term: 2, ConfState: cs}}); err != nil {
		t.Fatal(err)
	}
	if err := w.SaveSnapshot(wal.Snapshot{Index: 3, Term: 2, ConfState: &cs}); err != nil {
		t.Fatal(err)
	}
	ents = []raftpb.Entry{
		{Term: 2, Index: 4, Data: put(101, "foo", "bar")},
		{Term: 2, Index: 5, Type: raftpb.EntryConfChange, Data: mustMarshal(t, &raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: 0x1234})},
		{Term: 3, Index: 6, Data: put(102, "k", "v")},
	}
	if err := w.Save(raftpb.HardState{Term: 3, Vote: 0x8e9e05c52164694d, Commit: 6}, ents); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(tools.EtcdDumpLogs, dataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("etcd-dump-logs: %v\n%s", err, out)
	}
	t.Logf("etcd-dump-logs:\n%s", out)
	for _, want := range []string{
		"term=2 index=3 nodes=[8e9e05c52164694d]",
		"WAL metadata:\nnodeID=8e9e05c52164694d clusterID=cdf818194e3a8c32 term=3 commitIndex=6 vote=8e9e05c52164694d",
		"WAL entries: 3\nlastIndex=6",
		"Entry types (Normal,ConfigChange) count is : 3",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("etcd-dump-logs output lacks %q", want)
		}
	}
	// The entry table, exactly.
	_, table, _ := strings.Cut(string(out), "term\t     index\ttype\tdata\n")
	table, _, _ = strings.Cut(table, "\n\n")
	var rows []string
	for _, l := range strings.Split(table, "\n") {
		rows = append(rows, strings.Join(strings.Fields(l), " "))
	}
	want := []string{
		`2 4 norm header:<ID:101 > put:<key:"foo" value:"bar" >`,
		`2 5 conf method=ConfChangeRemoveNode id=1234`,
		`3 6 norm header:<ID:102 > put:<key:"k" value:"v" >`,
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("entry table:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}

// freePort is a port for a reference server (framework.FreePort: below the
// ephemeral range, so no outgoing connection takes it first).
func freePort(t *testing.T) int { return framework.FreePort(t, "127.0.0.1") }

// cairn's wal and snap packages read a data dir written by a real etcd 3.6.16
// that wrote snapshots and rotated through them.
func TestReadEtcdDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the reference etcd")
	}
	rel := refs.EtcdRelease(t, refs.Default)
	tools := refs.EtcdTools(t)
	dataDir := filepath.Join(t.TempDir(), "etcd")
	client := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cmd := exec.CommandContext(ctx, rel.Etcd, "--name", "n1", "--data-dir", dataDir,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "n1="+peer, "--snapshot-count", "5")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	ready := make(chan struct{})
	var logs bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		signalled := false
		for {
			n, err := stderr.Read(buf)
			logs.Write(buf[:n])
			if !signalled && bytes.Contains(logs.Bytes(), []byte("ready to serve client requests")) {
				close(ready)
				signalled = true
			}
			if err != nil {
				exited <- cmd.Wait()
				return
			}
		}
	}()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
	}()
	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("etcd exited: %v\n%s", err, logs.String())
	case <-ctx.Done():
		t.Fatal("etcd did not become ready")
	}
	ctl := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, rel.Etcdctl, append([]string{"--endpoints", client}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("etcdctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	ctl("endpoint", "health")
	const puts = 23
	for i := 0; i < puts; i++ {
		ctl("put", fmt.Sprintf("key%02d", i), fmt.Sprintf("value%02d", i))
	}
	var memberID, clusterID, raftIndex, raftTerm uint64
	status := ctl("endpoint", "status", "-w", "fields")
	for _, line := range strings.Split(status, "\n") {
		for key, dst := range map[string]*uint64{`"MemberID"`: &memberID, `"ClusterID"`: &clusterID, `"RaftIndex"`: &raftIndex, `"RaftTerm"`: &raftTerm} {
			if strings.HasPrefix(line, key+" : ") {
				fmt.Sscan(strings.TrimPrefix(line, key+" : "), dst)
			}
		}
	}
	if memberID == 0 || clusterID == 0 || raftIndex < puts {
		t.Fatalf("endpoint status:\n%s", status)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		stopped = true
	case <-ctx.Done():
		t.Fatal("etcd did not stop on SIGTERM")
	}

	lg := zaptest.NewLogger(t)
	walDir := filepath.Join(dataDir, "member", "wal")
	snapDir := filepath.Join(dataDir, "member", "snap")
	snapFiles, _ := filepath.Glob(filepath.Join(snapDir, "*.snap"))
	if len(snapFiles) == 0 {
		t.Fatalf("etcd wrote no .snap file with --snapshot-count 5")
	}
	walSnaps, err := wal.ValidSnapshotEntries(lg, walDir)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := snap.Open(lg, snapDir)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := ss.LoadNewestAvailable(walSnaps)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := filepath.Base(snapFiles[len(snapFiles)-1]), fmt.Sprintf("%016x-%016x.snap", sn.Metadata.Term, sn.Metadata.Index); got != want {
		t.Fatalf("newest snapshot file %s, loaded %s", got, want)
	}
	if len(sn.Metadata.ConfState.Voters) != 1 || sn.Metadata.ConfState.Voters[0] != memberID || !bytes.Contains(sn.Data, []byte("/0/members")) {
		t.Fatalf("snapshot %+v data %.200s", sn.Metadata, sn.Data)
	}

	// Open for appending, as cairn does when it starts on etcd's data dir.
	ws := wal.Snapshot{Index: sn.Metadata.Index, Term: sn.Metadata.Term, ConfState: &sn.Metadata.ConfState}
	w, err := wal.Open(lg, walDir, ws, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mdb, st, ents, err := w.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var md etcdserverpb.Metadata
	if err := md.Unmarshal(mdb); err != nil {
		t.Fatal(err)
	}
	if md.NodeID != memberID || md.ClusterID != clusterID {
		t.Fatalf("metadata %+v, want member %x cluster %x", md, memberID, clusterID)
	}
	if len(ents) == 0 || ents[0].Index != sn.Metadata.Index+1 {
		t.Fatalf("%d entries after snapshot %d", len(ents), sn.Metadata.Index)
	}
	last := ents[len(ents)-1]
	t.Logf("etcd wrote %d .snap files, newest at index %d; %d entries after it, last %d; hard state %+v",
		len(snapFiles), sn.Metadata.Index, len(ents), last.Index, st)
	if last.Index < raftIndex || st.Commit != last.Index || st.Term != raftTerm || st.Vote != memberID {
		t.Fatalf("hard state %+v, last entry %d, status index %d term %d", st, last.Index, raftIndex, raftTerm)
	}
	for i := range ents {
		if ents[i].Index != ents[0].Index+uint64(i) {
			t.Fatalf("entries not contiguous at %d", i)
		}
	}

	// etcd's own tool agrees on the entry count and the last index.
	dump := func() string {
		out, err := exec.Command(tools.EtcdDumpLogs, dataDir).CombinedOutput()
		if err != nil {
			t.Fatalf("etcd-dump-logs: %v\n%s", err, out)
		}
		return string(out)
	}
	out := dump()
	if want := fmt.Sprintf("WAL entries: %d\nlastIndex=%d\n", len(ents), last.Index); !strings.Contains(out, want) {
		t.Fatalf("etcd-dump-logs disagrees, want %q:\n%s", want, out)
	}

	// cairn appends to etcd's WAL, and etcd's tool reads the result.
	next := raftpb.Entry{Term: st.Term, Index: last.Index + 1, Data: mustMarshal(t, &etcdserverpb.InternalRaftRequest{
		Header: &etcdserverpb.RequestHeader{ID: 7}, Put: &etcdserverpb.PutRequest{Key: []byte("from"), Value: []byte("cairn")}})}
	st.Commit = next.Index
	if err := w.Save(st, []raftpb.Entry{next}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out = dump()
	if want := fmt.Sprintf("WAL entries: %d\nlastIndex=%d\n", len(ents)+1, next.Index); !strings.Contains(out, want) ||
		!strings.Contains(out, `put:<key:"from" value:"cairn" >`) {
		t.Fatalf("etcd-dump-logs after cairn's append, want %q:\n%s", want, out)
	}
	if _, err := os.Stat(filepath.Join(walDir, "0.tmp")); !os.IsNotExist(err) {
		t.Fatalf("0.tmp left behind: %v", err)
	}
}
