package ctl_test

// `snapshot restore` against etcdutl 3.6.16, all with real binaries: the
// same snapshot (saved by etcdctl from a real etcd holding keys) is restored
// by both tools with the same flags from identical working directories;
// their outputs must match, and so must the data dirs as etcd-dump-logs and
// `etcdutl snapshot status` see them. The restored data dir must then start
// under etcd and cairn alike.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/snap"
	"github.com/cairnkv/cairn/internal/wal"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

type restoreEnv struct {
	etcd, etcdutl, etcdctl, cairnctl, dumpLogs string
	snapshot                                   string // db || sha256, saved by etcdctl
	revision                                   int64  // of the snapshot
}

// newRestoreEnv starts a real etcd, writes the seed data, saves a snapshot
// with etcdctl and stops the server.
func newRestoreEnv(t *testing.T) *restoreEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts servers")
	}
	rel := refs.EtcdRelease(t, refs.Default)
	e := &restoreEnv{etcd: rel.Etcd, etcdutl: rel.Etcdutl, etcdctl: rel.Etcdctl,
		cairnctl: framework.Cairnctl(t), dumpLogs: refs.EtcdTools(t).EtcdDumpLogs}
	dir := t.TempDir()
	ep, stop, _ := startServerBinary(t, e.etcd, filepath.Join(dir, "server"))
	defer stop()
	if err := seed(ep); err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if _, err := cli.Delete(ctx, "c"); err != nil { // a tombstone in the snapshot
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "foo")
	cancel()
	cli.Close()
	if err != nil {
		t.Fatal(err)
	}
	e.revision = resp.Header.Revision
	e.snapshot = filepath.Join(dir, "s.db")
	r := runBinary(t, e.etcdctl, []string{"--endpoints", ep, "snapshot", "save", e.snapshot}, nil, "")
	if r.code != 0 {
		t.Fatalf("etcdctl snapshot save: %s", r.stderr)
	}
	return e
}

var restoreNormalisers = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\t`), "<ts>\t"},
	{regexp.MustCompile(`Logger: 0x[0-9a-f]+`), "Logger: <ptr>"},
}

func normaliseRestore(b []byte) string {
	s := string(b)
	for _, n := range restoreNormalisers {
		s = n.re.ReplaceAllString(s, n.repl)
	}
	return s
}

// runIn runs bin in dir (which gets a copy of the snapshot as s.db, plus
// whatever prepare creates) and returns the result.
func (e *restoreEnv) runIn(t *testing.T, dir, bin string, args []string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout: out.Bytes(), stderr: errb.Bytes(), code: code}
}

// workDir is a fresh directory holding s.db (the snapshot), s.raw (the
// snapshot without its hash), bad.db (one byte flipped), junk.db (not a
// bbolt file, with a valid hash) and tiny.db (3 bytes).
func (e *restoreEnv) workDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(e.snapshot)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(b)
	bad[5000] ^= 0xff
	junk := bytes.Repeat([]byte("hello"), 100)
	junk = append(junk, make([]byte, 12)...)
	sum := sha256.Sum256(junk)
	files := map[string][]byte{"s.db": b, "s.raw": b[:len(b)-32], "bad.db": bad, "junk.db": append(junk, sum[:]...), "tiny.db": []byte("abc")}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	cluster3 = "m1=http://127.0.0.1:12380,m2=http://127.0.0.1:22380,m3=http://127.0.0.1:32380"
	token3   = "etcd-cluster-1"
)

func TestSnapshotRestoreDifferential(t *testing.T) {
	e := newRestoreEnv(t)
	type tc struct {
		name    string
		args    []string
		prepare func(t *testing.T, dir string)
		dataDir string // compared with etcd-dump-logs and status when the restore succeeds
		// codeOnly compares the exit code and the first stderr line only
		// (etcd's backend panics with its own stack traces).
		codeOnly bool
	}
	mkdir := func(p string, file bool) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			if err := os.MkdirAll(filepath.Join(dir, p), 0o700); err != nil {
				t.Fatal(err)
			}
			if file {
				if err := os.WriteFile(filepath.Join(dir, p, "x"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	cases := []tc{
		{name: "one member", args: []string{"s.db", "--data-dir", "out"}, dataDir: "out"},
		{name: "default data dir", args: []string{"s.db", "--name", "solo", "--initial-cluster", "solo=http://localhost:2380"}, dataDir: "solo.etcd"},
		{name: "three members", dataDir: "out", args: []string{"s.db", "--data-dir", "out", "--name", "m2",
			"--initial-cluster", cluster3, "--initial-cluster-token", token3, "--initial-advertise-peer-urls", "http://127.0.0.1:22380"}},
		{name: "three members first", dataDir: "out", args: []string{"s.db", "--data-dir", "out", "--name", "m1",
			"--initial-cluster", cluster3, "--initial-cluster-token", token3, "--initial-advertise-peer-urls", "http://127.0.0.1:12380"}},
		{name: "wal dir", args: []string{"s.db", "--data-dir", "out", "--wal-dir", "wal"}},
		{name: "bump", args: []string{"s.db", "--data-dir", "out", "--bump-revision", "1000", "--mark-compacted"}, dataDir: "out"},
		{name: "skip hash", args: []string{"s.raw", "--data-dir", "out", "--skip-hash-check"}, dataDir: "out"},
		{name: "skip hash with hash", args: []string{"bad.db", "--data-dir", "out", "--skip-hash-check"}},
		{name: "mmap", args: []string{"s.db", "--data-dir", "out", "--initial-memory-map-size", "1048576"}},
		{name: "empty data dir", args: []string{"s.db", "--data-dir", "out"}, prepare: mkdir("out", false)},
		// errors
		{name: "non-empty data dir", args: []string{"s.db", "--data-dir", "out"}, prepare: mkdir("out", true)},
		{name: "wal dir exists", args: []string{"s.db", "--data-dir", "out", "--wal-dir", "wal"}, prepare: mkdir("wal", false)},
		{name: "missing hash", args: []string{"s.raw", "--data-dir", "out"}},
		{name: "corrupted hash", args: []string{"bad.db", "--data-dir", "out"}},
		{name: "bump alone", args: []string{"s.db", "--data-dir", "out", "--bump-revision", "5"}},
		{name: "mark alone", args: []string{"s.db", "--data-dir", "out", "--mark-compacted"}},
		{name: "bad cluster", args: []string{"s.db", "--data-dir", "out", "--initial-cluster", "foo"}},
		{name: "name not in cluster", args: []string{"s.db", "--data-dir", "out", "--initial-cluster", "a=http://localhost:2380"}},
		{name: "duplicate url", args: []string{"s.db", "--data-dir", "out", "--initial-cluster", "default=http://localhost:2380,b=http://localhost:2380"}},
		{name: "advertise mismatch", args: []string{"s.db", "--data-dir", "out", "--initial-advertise-peer-urls", "http://127.0.0.1:2"}},
		{name: "bad advertise", args: []string{"s.db", "--data-dir", "out", "--initial-advertise-peer-urls", "bad url"}},
		{name: "not a db", args: []string{"junk.db", "--data-dir", "out"}, codeOnly: true},
		{name: "too short", args: []string{"tiny.db", "--data-dir", "out"}},
		{name: "member with two urls", dataDir: "out", args: []string{"s.db", "--data-dir", "out",
			"--initial-cluster", "default=http://127.0.0.1:2380,default=http://127.0.0.1:2381", "--initial-advertise-peer-urls", "http://127.0.0.1:2381,http://127.0.0.1:2380"}},
		{name: "advertise count", args: []string{"s.db", "--data-dir", "out", "--initial-advertise-peer-urls", "http://127.0.0.1:2380,http://127.0.0.1:2381"}},
		{name: "empty token", dataDir: "out", args: []string{"s.db", "--data-dir", "out", "--initial-cluster-token="}},
		{name: "url with path", args: []string{"s.db", "--data-dir", "out", "--initial-cluster", "default=http://localhost:2380,x=http://localhost:2380/"}},
		{name: "no file", args: []string{"missing.db", "--data-dir", "out"}},
		{name: "no args", args: []string{}},
		{name: "two args", args: []string{"a", "b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var dirs [2]string
			var res [2]result
			for i, bin := range []string{e.etcdutl, e.cairnctl} {
				dirs[i] = e.workDir(t)
				if c.prepare != nil {
					c.prepare(t, dirs[i])
				}
				res[i] = e.runIn(t, dirs[i], bin, append([]string{"snapshot", "restore"}, c.args...))
			}
			if res[0].code != res[1].code {
				t.Errorf("exit code: etcdutl %d, cairnctl %d\nstderr etcdutl:\n%s\ncairnctl:\n%s", res[0].code, res[1].code, res[0].stderr, res[1].stderr)
			}
			if c.codeOnly {
				first := func(b []byte) string { l, _, _ := strings.Cut(normaliseRestore(b), "\n"); return l }
				if a, b := first(res[0].stderr), first(res[1].stderr); a != b {
					t.Errorf("stderr first line:\netcdutl:  %s\ncairnctl: %s", a, b)
				}
				return
			}
			if a, b := normaliseRestore(res[0].stdout), normaliseRestore(res[1].stdout); a != b {
				t.Errorf("stdout:\netcdutl:\n%s\ncairnctl:\n%s", a, b)
			}
			if a, b := normaliseRestore(res[0].stderr), normaliseRestore(res[1].stderr); a != b {
				t.Errorf("stderr:\netcdutl:\n%s\ncairnctl:\n%s", a, b)
			}
			// The files left behind (etcdutl leaves a partial data dir on failure).
			if a, b := listFiles(t, dirs[0]), listFiles(t, dirs[1]); a != b {
				t.Errorf("files:\netcdutl:\n%s\ncairnctl:\n%s", a, b)
			}
			if c.dataDir == "" || res[0].code != 0 {
				return
			}
			compareDataDirs(t, filepath.Join(dirs[0], c.dataDir), filepath.Join(dirs[1], c.dataDir))
			for _, view := range []struct {
				name string
				run  func(dir string) result
			}{
				{"etcd-dump-logs", func(dir string) result {
					return e.runIn(t, dir, e.dumpLogs, []string{c.dataDir})
				}},
				{"etcdutl snapshot status", func(dir string) result {
					return e.runIn(t, dir, e.etcdutl, []string{"snapshot", "status", "-w", "json", filepath.Join(c.dataDir, "member", "snap", "db")})
				}},
				{"etcd-dump-logs entries", func(dir string) result {
					return e.runIn(t, dir, e.dumpLogs, []string{"--start-index", "0", c.dataDir})
				}},
			} {
				a, b := view.run(dirs[0]), view.run(dirs[1])
				if len(a.stdout) == 0 {
					t.Errorf("%s printed nothing: %s", view.name, a.stderr)
				}
				if a.code != 0 || b.code != 0 || !bytes.Equal(a.stdout, b.stdout) {
					t.Errorf("%s differs (codes %d/%d):\netcdutl's dir:\n%s%s\ncairnctl's dir:\n%s%s", view.name, a.code, b.code, a.stdout, a.stderr, b.stdout, b.stderr)
				}
			}
		})
	}
}

// compareDataDirs compares two restored data dirs record by record: the
// WAL (metadata, hard state, entries with their conf-change contexts), the
// raft snapshot (metadata and the membership its v2 store holds; the bytes
// too when there is one member, since etcdutl adds members in map order)
// and every bucket, key and value of the db.
func compareDataDirs(t *testing.T, a, b string) {
	t.Helper()
	readWAL := func(dir string) string {
		w, err := wal.OpenForRead(zap.NewNop(), filepath.Join(dir, "member", "wal"), wal.Snapshot{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		md, st, ents, err := w.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("metadata %x\nstate %+v\nentries %+v", md, st, ents)
	}
	if x, y := readWAL(a), readWAL(b); x != y {
		t.Errorf("WAL differs:\netcdutl: %s\ncairnctl: %s", x, y)
	}
	readSnap := func(dir string) (*raftpb.Snapshot, string) {
		names, err := filepath.Glob(filepath.Join(dir, "member", "snap", "*.snap"))
		if err != nil || len(names) != 1 {
			t.Fatalf("snap files in %s: %v %v", dir, names, err)
		}
		s, err := snap.Read(zap.NewNop(), names[0])
		if err != nil {
			t.Fatal(err)
		}
		ms, removed, version, err := membership.UnmarshalV2Snapshot(s.Data)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(ms, func(x, y *membership.Member) int { return cmp.Compare(x.ID, y.ID) })
		var sb strings.Builder
		for _, m := range ms {
			fmt.Fprintf(&sb, "%+v;", *m)
		}
		return s, fmt.Sprintf("%s %s %v removed %v version %q", filepath.Base(names[0]), sb.String(), s.Metadata, removed, version)
	}
	sa, x := readSnap(a)
	sb, y := readSnap(b)
	if x != y {
		t.Errorf(".snap differs:\netcdutl: %s\ncairnctl: %s", x, y)
	}
	if len(sa.Metadata.ConfState.Voters) == 1 && !bytes.Equal(sa.Data, sb.Data) {
		t.Errorf(".snap v2 store differs:\netcdutl: %s\ncairnctl: %s", sa.Data, sb.Data)
	}
	dumpDB := func(dir string) string {
		db, err := bolt.Open(filepath.Join(dir, "member", "snap", "db"), 0o400, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var sb strings.Builder
		err = db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
				fmt.Fprintf(&sb, "[%s]\n", name)
				return bk.ForEach(func(k, v []byte) error {
					fmt.Fprintf(&sb, "%q=%q\n", k, v)
					return nil
				})
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return sb.String()
	}
	if x, y := dumpDB(a), dumpDB(b); x != y {
		t.Errorf("db differs:\netcdutl:\n%s\ncairnctl:\n%s", x, y)
	}
}

// listFiles is every path under dir with its size (the .wal's
// preallocated size included), one a line.
func listFiles(t *testing.T, dir string) string {
	t.Helper()
	var sb strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() {
			sb.WriteString(rel + "/\n")
		} else if strings.Contains(rel, string(filepath.Separator)) {
			size := fi.Size()
			if filepath.Ext(rel) == ".snap" || filepath.Base(rel) == "db" {
				size = 0 // contents compared through etcd's tools
			}
			sb.WriteString(rel + " " + strconv.FormatInt(size, 10) + "\n")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

func TestSnapshotRestoreStarts(t *testing.T) {
	e := newRestoreEnv(t)
	cairn := framework.Cairn(t)
	// One peer URL for every run, so the IDs are the same throughout.
	probe := framework.NewMember(t, e.etcd, "r1")
	peer := probe.Peer
	restore := func(bin string) string {
		dir := filepath.Join(t.TempDir(), "r1.etcd")
		r := runBinary(t, bin, []string{"snapshot", "restore", e.snapshot, "--data-dir", dir, "--name", "r1",
			"--initial-cluster", "r1=" + peer, "--initial-advertise-peer-urls", peer, "--initial-cluster-token", "restore-test"}, nil, "")
		if r.code != 0 {
			t.Fatalf("%s restore: %s", bin, r.stderr)
		}
		return dir
	}
	type ids struct{ member, cluster uint64 }
	serve := func(server, dataDir string) ids {
		m := framework.NewMember(t, server, "r1")
		m.Peer = peer
		m.DataDir = dataDir
		m.StartAndWait(30 * time.Second)
		defer m.Stop()
		cli := m.Client3()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, "", clientv3.WithPrefix())
		if err != nil {
			t.Fatalf("%s on %s: get: %v", server, dataDir, err)
		}
		if resp.Header.Revision != e.revision {
			t.Errorf("%s on %s: revision %d, want %d", server, dataDir, resp.Header.Revision, e.revision)
		}
		got := map[string]string{}
		for _, kv := range resp.Kvs {
			got[string(kv.Key)] = string(kv.Value)
		}
		want := map[string]string{}
		for _, kv := range seedData {
			want[kv[0]] = kv[1]
		}
		for _, kv := range leaseSeed {
			want[kv.key] = "v"
		}
		delete(want, "c")
		if len(got) != len(want) {
			t.Errorf("%s on %s: %d keys, want %d: %v", server, dataDir, len(got), len(want), got)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s on %s: %q = %q, want %q", server, dataDir, k, got[k], v)
			}
		}
		ml, err := cli.MemberList(ctx)
		if err != nil {
			t.Fatalf("%s on %s: member list: %v", server, dataDir, err)
		}
		if len(ml.Members) != 1 || ml.Members[0].Name != "r1" {
			t.Errorf("%s on %s: members %v", server, dataDir, ml.Members)
		}
		st, err := cli.Status(ctx, m.Endpoint())
		if err != nil {
			t.Fatalf("%s on %s: status: %v", server, dataDir, err)
		}
		return ids{member: st.Header.MemberId, cluster: st.Header.ClusterId}
	}
	ref := serve(e.etcd, restore(e.etcdutl))
	for _, run := range []struct{ name, server string }{{"etcd", e.etcd}, {"cairn", cairn}} {
		got := serve(run.server, restore(e.cairnctl))
		if got != ref {
			t.Errorf("%s on cairnctl's restore: member %x cluster %x; etcd on etcdutl's: member %x cluster %x",
				run.name, got.member, got.cluster, ref.member, ref.cluster)
		}
	}
	if ref.member == 0 || ref.cluster == 0 {
		t.Errorf("ids %+v", ref)
	}
}
