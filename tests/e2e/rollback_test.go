package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// rollbackSnapshotCount is the --snapshot-count of every member in the
// rollback test: .snap files are written often and WAL segments released.
const rollbackSnapshotCount = 20

// rollbackFlags are the flags every member of the rollback test starts
// with, cairn and etcd alike, beyond the framework's name, data dir, URLs
// and --initial-cluster. --max-wals 1 purges every WAL segment the WAL has
// released.
var rollbackFlags = []string{
	"--initial-cluster-token", "rollback-token",
	"--snapshot-count", fmt.Sprint(rollbackSnapshotCount),
	"--max-wals", "1",
}

// "Stop etcd, start cairn on the same data dir, and back again if you
// must": cairn writes a data dir (snapshots, released and purged WAL
// segments, a physical compaction, a defrag) and is stopped; etcd 3.6.16
// then starts on it with the same flags and serves the same keys,
// revisions, compacted revision, hashes and member and cluster IDs, and
// takes writes. Then etcd is stopped the same way and cairn starts on the
// dir etcd just used and still serves everything.
//
// SIGTERM: each binary closes its backend cleanly, and the whole-backend
// hash (Maintenance.Hash) must match too. SIGKILL: with a backend batch
// interval of an hour, the backend only commits at snapshots, so the last
// entries are in the WAL alone when the process dies (checked with
// etcdutl); the next binary must replay them from the other's WAL.
func TestRollbackToEtcd(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	for _, stop := range []string{"SIGTERM", "SIGKILL"} {
		t.Run(stop, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
			defer cancel()
			kill := stop == "SIGKILL"
			flags := rollbackFlags
			if kill {
				flags = append(slices.Clone(flags), "--backend-batch-interval", "1h")
			}
			// halt stops m; after SIGKILL it checks that the backend
			// missed the last writes, so that they must come from the WAL.
			halt := func(m *framework.Member, rev int64) {
				t.Helper()
				if !kill {
					m.Stop()
					return
				}
				m.Kill()
				dbRev := backendRevision(t, ref, m.DataDir)
				if dbRev >= rev {
					t.Fatalf("%s's backend holds revision %d after SIGKILL, want it behind %d (the WAL tail)", m.Bin, dbRev, rev)
				}
				t.Logf("%s killed: backend at revision %d, revisions up to %d only in the WAL", filepath.Base(m.Bin), dbRev, rev)
			}
			// Maintenance.Hash commits the backend: only taken before a
			// clean stop.
			withBackendHash := !kill

			m := framework.NewMember(t, framework.Cairn(t), "n1", flags...)
			m.StartAndWait(20 * time.Second)
			compactRev := rollbackWorkload(ctx, t, m)
			if kill {
				ensureUnsnapshottedTail(ctx, t, m)
			}
			want := captureState(ctx, t, m, compactRev, withBackendHash)
			halt(m, want.rev)
			t.Logf("cairn's data dir: %s", listDataDir(m.DataDir))

			// etcd on cairn's data dir.
			e := framework.NewMember(t, ref.Etcd, "n1", flags...)
			e.DataDir, e.Client, e.Peer = m.DataDir, m.Client, m.Peer
			e.StartAndWait(30 * time.Second)
			got := captureState(ctx, t, e, compactRev, withBackendHash)
			compareState(t, "etcd on cairn's data dir", want, got)

			// etcd takes writes at the next revision, and etcdctl sees it.
			c := e.Client3()
			p, err := c.Put(ctx, "after/etcd", "rolled back")
			if err != nil || p.Header.Revision != want.rev+1 {
				t.Fatalf("write on etcd after rollback: %+v %v (want revision %d)", p, err, want.rev+1)
			}
			if _, err := c.Delete(ctx, "key03"); err != nil {
				t.Fatalf("delete on etcd after rollback: %v", err)
			}
			c.Close()
			checkEtcdctlStatus(t, ref, e, want.memberID, want.rev+2)

			// And back: cairn on the dir etcd just used.
			if kill {
				ensureUnsnapshottedTail(ctx, t, e)
			}
			want = captureState(ctx, t, e, compactRev, withBackendHash)
			halt(e, want.rev)
			t.Logf("etcd's data dir: %s", listDataDir(e.DataDir))
			m2 := framework.NewMember(t, framework.Cairn(t), "n1", flags...)
			m2.DataDir, m2.Client, m2.Peer = e.DataDir, e.Client, e.Peer
			m2.StartAndWait(30 * time.Second)
			got = captureState(ctx, t, m2, compactRev, withBackendHash)
			compareState(t, "cairn on etcd's data dir after the round trip", want, got)
			c = m2.Client3()
			defer c.Close()
			p, err = c.Put(ctx, "after/cairn", "round trip")
			if err != nil || p.Header.Revision != want.rev+1 {
				t.Fatalf("write on cairn after the round trip: %+v %v (want revision %d)", p, err, want.rev+1)
			}
		})
	}
}

// ensureUnsnapshottedTail writes until m's last applied entry is past its
// newest snapshot and no snapshot is due for it (applied - snapshot index
// in [1, snapshot count]: a snapshot is taken once the gap exceeds the
// count), so the backend, committed at each snapshot, misses that tail.
func ensureUnsnapshottedTail(ctx context.Context, t *testing.T, m *framework.Member) {
	t.Helper()
	c := m.Client3()
	defer c.Close()
	for i := 0; i < 3; i++ {
		snapIndex := newestSnapIndex(t, m.DataDir) // before Status: a snapshot may land in between
		st, err := c.Status(ctx, m.Endpoint())
		if err != nil {
			t.Fatalf("%s: status: %v", m.Bin, err)
		}
		if gap := st.RaftAppliedIndex - snapIndex; st.RaftAppliedIndex > snapIndex && gap <= rollbackSnapshotCount {
			return
		}
		if _, err := c.Put(ctx, "tail", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("%s: no unsnapshotted tail after 3 writes", m.Bin)
}

// newestSnapIndex is the raft index of the newest .snap file in dataDir
// (named <term>-<index>.snap, in hex).
func newestSnapIndex(t *testing.T, dataDir string) uint64 {
	t.Helper()
	snaps, _ := filepath.Glob(filepath.Join(dataDir, "member", "snap", "*.snap"))
	var newest uint64
	for _, s := range snaps {
		var term, index uint64
		if _, err := fmt.Sscanf(filepath.Base(s), "%016x-%016x.snap", &term, &index); err != nil {
			t.Fatalf("snap file name %s: %v", s, err)
		}
		newest = max(newest, index)
	}
	return newest
}

// backendRevision is the revision etcdutl reads from the backend of a
// stopped member's data dir.
func backendRevision(t *testing.T, ref refs.Etcd, dataDir string) int64 {
	t.Helper()
	db := filepath.Join(dataDir, "member", "snap", "db")
	out, errOut, code := framework.Run(t, nil, "", ref.Etcdutl, "snapshot", "status", db, "-w", "json")
	if code != 0 {
		t.Fatalf("etcdutl snapshot status %s: exit %d\n%s%s", db, code, out, errOut)
	}
	var st struct {
		Revision int64 `json:"revision"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("etcdutl snapshot status: %v\n%s", err, out)
	}
	return st.Revision
}

// rollbackWorkload writes every kind of change to m: puts, overwrites,
// deletes, a range delete, txns taking either branch, over 128 MB of large
// values (two WAL segment cuts, so the first segment is released and
// purged), a physical compaction and a defrag, then more writes. It returns
// the compacted revision.
func rollbackWorkload(ctx context.Context, t *testing.T, m *framework.Member) int64 {
	t.Helper()
	c := m.Client3()
	defer c.Close()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 30; i++ {
		must(c.Put(ctx, fmt.Sprintf("key%02d", i), fmt.Sprintf("v%d", i)))
	}
	for round := 1; round <= 2; round++ {
		for i := 0; i < 10; i++ {
			must(c.Put(ctx, fmt.Sprintf("key%02d", i), fmt.Sprintf("v%d.%d", i, round)))
		}
	}
	for i := 10; i < 15; i++ {
		must(c.Delete(ctx, fmt.Sprintf("key%02d", i)))
	}
	must(c.Delete(ctx, "key2", clientv3.WithPrefix())) // key20..key29
	must(c.Put(ctx, "key25", "reborn"))                // a new generation: create revision moves
	txn := func(cmp clientv3.Cmp, then, els []clientv3.Op, wantOK bool) {
		t.Helper()
		r, err := c.Txn(ctx).If(cmp).Then(then...).Else(els...).Commit()
		if err != nil || r.Succeeded != wantOK {
			t.Fatalf("txn: %+v %v (want succeeded=%v)", r, err, wantOK)
		}
	}
	txn(clientv3.Compare(clientv3.Value("key00"), "=", "v0.2"),
		[]clientv3.Op{clientv3.OpPut("txn/then", "1"), clientv3.OpDelete("key01"), clientv3.OpPut("key02", "txn")},
		[]clientv3.Op{clientv3.OpPut("txn/else", "1")}, true)
	txn(clientv3.Compare(clientv3.Version("key00"), "=", 1),
		[]clientv3.Op{clientv3.OpPut("txn/then2", "1")},
		[]clientv3.Op{clientv3.OpPut("txn/else2", "1"), clientv3.OpDelete("txn/then")}, false)

	// 140 MiB of values over four keys: more than two 64 MB WAL segments.
	// Overwriting the same keys leaves old revisions for the compaction to
	// remove and the defrag to give back.
	big := strings.Repeat("b", 1<<20)
	for i := 0; i < 140; i++ {
		must(c.Put(ctx, fmt.Sprintf("big/%d", i%4), fmt.Sprintf("%03d", i)+big))
	}
	// Snapshots come every 20 entries; write on until one of them has
	// released the first segment and the purge removed it.
	walDir := filepath.Join(m.DataDir, "member", "wal")
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		segs, _ := filepath.Glob(filepath.Join(walDir, "*.wal"))
		if len(segs) > 0 && !strings.HasPrefix(filepath.Base(segs[0]), "0000000000000000-") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first WAL segment was never purged: %v", segs)
		}
		must(c.Put(ctx, "tick", fmt.Sprint(i)))
	}
	if snaps, _ := filepath.Glob(filepath.Join(m.DataDir, "member", "snap", "*.snap")); len(snaps) == 0 {
		t.Fatal("no .snap file was written")
	}

	g, err := c.Get(ctx, "key00")
	if err != nil {
		t.Fatal(err)
	}
	compactRev := g.Header.Revision
	must(c.Put(ctx, "key00", "after-compaction-point"))
	must(c.Put(ctx, "big/0", "small now"))
	must(c.Compact(ctx, compactRev, clientv3.WithCompactPhysical()))
	must(c.Defragment(ctx, m.Endpoint()))
	for i := 0; i < 25; i++ { // past one more snapshot
		must(c.Put(ctx, fmt.Sprintf("post/%02d", i), fmt.Sprint(i)))
	}
	must(c.Delete(ctx, "post/00"))
	txn(clientv3.Compare(clientv3.ModRevision("post/01"), ">", compactRev),
		[]clientv3.Op{clientv3.OpPut("txn/post", "1"), clientv3.OpDelete("key04")}, nil, true)
	return compactRev
}

// memberState is what a member serves that must survive a change of
// binary on its data dir.
type memberState struct {
	rev                 int64
	all                 *clientv3.GetResponse // every key at rev
	atCompact           *clientv3.GetResponse // every key at the compacted revision
	memberID, clusterID uint64
	members             []*pb.Member
	hash                *clientv3.HashKVResponse
	backendHash         uint32 // Maintenance.Hash (every bucket but a few meta keys), 0 if not taken
}

// captureState reads what m serves. withBackendHash adds Maintenance.Hash,
// which commits the backend.
func captureState(ctx context.Context, t *testing.T, m *framework.Member, compactRev int64, withBackendHash bool) memberState {
	t.Helper()
	c := m.Client3()
	defer c.Close()
	var s memberState
	var err error
	if s.all, err = c.Get(ctx, "", clientv3.WithFromKey()); err != nil {
		t.Fatalf("%s: get all: %v", m.Bin, err)
	}
	s.rev = s.all.Header.Revision
	if s.atCompact, err = c.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithRev(compactRev)); err != nil {
		t.Fatalf("%s: get at the compacted revision %d: %v", m.Bin, compactRev, err)
	}
	if _, err := c.Get(ctx, "key00", clientv3.WithRev(compactRev-1)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("%s: get below the compacted revision %d: %v, want %v", m.Bin, compactRev, err, rpctypes.ErrCompacted)
	}
	st, err := c.Status(ctx, m.Endpoint())
	if err != nil {
		t.Fatalf("%s: status: %v", m.Bin, err)
	}
	s.memberID, s.clusterID = st.Header.MemberId, st.Header.ClusterId
	ml, err := c.MemberList(ctx)
	if err != nil {
		t.Fatalf("%s: member list: %v", m.Bin, err)
	}
	if ml.Header.MemberId != s.memberID || ml.Header.ClusterId != s.clusterID {
		t.Fatalf("%s: member list header %+v, status header %+v", m.Bin, ml.Header, st.Header)
	}
	s.members = ml.Members
	sort.Slice(s.members, func(i, j int) bool { return s.members[i].ID < s.members[j].ID })
	if s.hash, err = c.HashKV(ctx, m.Endpoint(), 0); err != nil {
		t.Fatalf("%s: hashkv: %v", m.Bin, err)
	}
	if withBackendHash {
		h, err := pb.NewMaintenanceClient(c.ActiveConnection()).Hash(ctx, &pb.HashRequest{})
		if err != nil {
			t.Fatalf("%s: hash: %v", m.Bin, err)
		}
		s.backendHash = h.Hash
	}
	return s
}

// compareState fails the test where got (after the change of binary)
// differs from want (before it).
func compareState(t *testing.T, what string, want, got memberState) {
	t.Helper()
	if got.rev != want.rev {
		t.Errorf("%s: current revision %d, want %d", what, got.rev, want.rev)
	}
	if got.memberID != want.memberID || got.clusterID != want.clusterID {
		t.Errorf("%s: member %x cluster %x, want member %x cluster %x", what, got.memberID, got.clusterID, want.memberID, want.clusterID)
	}
	compareKVs(t, what+", current revision", want.all, got.all)
	compareKVs(t, what+", compacted revision", want.atCompact, got.atCompact)
	if len(got.members) != len(want.members) {
		t.Errorf("%s: members %v, want %v", what, got.members, want.members)
	}
	for i := range want.members {
		if i >= len(got.members) {
			break
		}
		w, g := want.members[i], got.members[i]
		if g.ID != w.ID || g.Name != w.Name || !reflect.DeepEqual(g.PeerURLs, w.PeerURLs) ||
			!reflect.DeepEqual(g.ClientURLs, w.ClientURLs) || g.IsLearner != w.IsLearner {
			t.Errorf("%s: member %v, want %v", what, g, w)
		}
	}
	wh, gh := want.hash, got.hash
	if gh.Hash != wh.Hash || gh.CompactRevision != wh.CompactRevision || gh.HashRevision != wh.HashRevision {
		t.Errorf("%s: hashkv hash %d compact %d at %d, want hash %d compact %d at %d",
			what, gh.Hash, gh.CompactRevision, gh.HashRevision, wh.Hash, wh.CompactRevision, wh.HashRevision)
	}
	if got.backendHash != want.backendHash {
		t.Errorf("%s: backend hash %d, want %d", what, got.backendHash, want.backendHash)
	}
	if t.Failed() {
		t.FailNow()
	}
}

func compareKVs(t *testing.T, what string, want, got *clientv3.GetResponse) {
	t.Helper()
	if len(got.Kvs) != len(want.Kvs) {
		t.Errorf("%s: %d keys, want %d", what, len(got.Kvs), len(want.Kvs))
		return
	}
	for i, w := range want.Kvs {
		g := got.Kvs[i]
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: key %q (create %d mod %d version %d, %d bytes), want key %q (create %d mod %d version %d, %d bytes)",
				what, g.Key, g.CreateRevision, g.ModRevision, g.Version, len(g.Value), w.Key, w.CreateRevision, w.ModRevision, w.Version, len(w.Value))
		}
	}
}

// checkEtcdctlStatus runs etcdctl endpoint status against m and checks the
// member ID and revision it reports.
func checkEtcdctlStatus(t *testing.T, ref refs.Etcd, m *framework.Member, memberID uint64, rev int64) {
	t.Helper()
	out, errOut, code := framework.Run(t, nil, "", ref.Etcdctl, "--endpoints", m.Client, "endpoint", "status", "-w", "json")
	if code != 0 {
		t.Fatalf("etcdctl endpoint status: exit %d\n%s%s", code, out, errOut)
	}
	var st []struct {
		Status struct {
			Header struct {
				MemberID uint64 `json:"member_id"`
				Revision int64  `json:"revision"`
			} `json:"header"`
		}
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st) != 1 {
		t.Fatalf("etcdctl endpoint status: %v\n%s", err, out)
	}
	if h := st[0].Status.Header; h.MemberID != memberID || h.Revision != rev {
		t.Fatalf("etcdctl endpoint status: member %x revision %d, want %x %d\n%s", h.MemberID, h.Revision, memberID, rev, out)
	}
}

// listDataDir names the files under member/wal and member/snap, for the
// test log.
func listDataDir(dir string) string {
	var names []string
	for _, sub := range []string{"wal", "snap"} {
		files, _ := filepath.Glob(filepath.Join(dir, "member", sub, "*"))
		for _, f := range files {
			names = append(names, sub+"/"+filepath.Base(f))
		}
	}
	return strings.Join(names, " ")
}
