package snap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap/zaptest"

	"github.com/cairnkv/cairn/internal/wal"
)

func testSnap(term, index uint64) raftpb.Snapshot {
	return raftpb.Snapshot{
		Data:     []byte(`{"Root":{}}`),
		Metadata: raftpb.SnapshotMetadata{Term: term, Index: index, ConfState: raftpb.ConfState{Voters: []uint64{1, 2}}},
	}
}

func TestSnapFileEncoding(t *testing.T) {
	// snappb.Snapshot{Crc: 0x01, Data: "ab"} as gogo marshals it.
	crc, data, err := decodeSnapFile([]byte{0x08, 0x01, 0x12, 0x02, 'a', 'b'})
	if err != nil || crc != 1 || string(data) != "ab" {
		t.Fatalf("%x %q %v", crc, data, err)
	}
	b := encodeSnapFile([]byte("ab"))
	if b[0] != 0x08 || !bytes.HasSuffix(b, []byte{0x12, 0x02, 'a', 'b'}) {
		t.Fatalf("% x", b)
	}
	if _, _, err := decodeSnapFile([]byte{0x12, 0x05, 'a'}); !errors.Is(err, ErrBadSnapshot) {
		t.Fatal(err)
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(zaptest.NewLogger(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("empty dir: %v", err)
	}
	if err := s.SaveSnap(raftpb.Snapshot{}); err != nil {
		t.Fatal(err)
	}
	for _, sn := range []raftpb.Snapshot{testSnap(1, 5), testSnap(2, 10), testSnap(2, 20)} {
		if err := s.SaveSnap(sn); err != nil {
			t.Fatal(err)
		}
	}
	names, _ := os.ReadDir(dir)
	var got []string
	for _, n := range names {
		got = append(got, n.Name())
	}
	want := []string{"0000000000000001-0000000000000005.snap", "0000000000000002-000000000000000a.snap", "0000000000000002-0000000000000014.snap"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("files %v", got)
	}
	sn, err := s.Load()
	if err != nil || !reflect.DeepEqual(*sn, testSnap(2, 20)) {
		t.Fatalf("%+v %v", sn, err)
	}
	sn, err = s.LoadNewestAvailable([]wal.Snapshot{{Index: 0}, {Index: 5, Term: 1}, {Index: 10, Term: 2}})
	if err != nil || sn.Metadata.Index != 10 {
		t.Fatalf("%+v %v", sn, err)
	}
	if _, err := s.LoadNewestAvailable([]wal.Snapshot{{Index: 10, Term: 3}}); !errors.Is(err, ErrNoSnapshot) {
		t.Fatal(err)
	}
}

func TestBrokenSnapshotsAreRenamed(t *testing.T) {
	dir := t.TempDir()
	s := New(zaptest.NewLogger(t), dir)
	for _, sn := range []raftpb.Snapshot{testSnap(1, 5), testSnap(1, 6), testSnap(1, 7), testSnap(1, 8)} {
		if err := s.SaveSnap(sn); err != nil {
			t.Fatal(err)
		}
	}
	p8 := filepath.Join(dir, "0000000000000001-0000000000000008.snap")
	p7 := filepath.Join(dir, "0000000000000001-0000000000000007.snap")
	p6 := filepath.Join(dir, "0000000000000001-0000000000000006.snap")
	b, _ := os.ReadFile(p8)
	b[len(b)-1] ^= 1 // crc mismatch
	os.WriteFile(p8, b, 0o600)
	os.WriteFile(p7, nil, 0o600)                // empty
	os.WriteFile(p6, []byte{0x12, 0x7f}, 0o600) // not a protobuf
	for _, p := range []string{p8, p7, p6} {
		if _, err := Read(zaptest.NewLogger(t), p); !errors.As(err, new(*CorruptionError)) || !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: %v", p, err)
		}
	}
	sn, err := s.Load()
	if err != nil || sn.Metadata.Index != 5 {
		t.Fatalf("%+v %v", sn, err)
	}
	for _, p := range []string{p8, p7, p6} {
		if _, err := os.Stat(p + ".broken"); err != nil {
			t.Fatalf("%s not renamed: %v", p, err)
		}
	}
}

func TestOpenRemovesTmpFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "member", "snap")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"tmp123", "tmp", "db"} {
		os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600)
	}
	if _, err := Open(nil, dir); err != nil {
		t.Fatal(err)
	}
	es, _ := os.ReadDir(dir)
	if len(es) != 1 || es[0].Name() != "db" {
		t.Fatalf("%v", es)
	}
}

func TestDBFiles(t *testing.T) {
	dir := t.TempDir()
	s := New(nil, dir)
	if _, err := s.DBFilePath(0x20); !errors.Is(err, ErrNoDBSnapshot) {
		t.Fatal(err)
	}
	n, err := s.SaveDBFrom(strings.NewReader("bolt file"), 0x20)
	if err != nil || n != 9 {
		t.Fatal(n, err)
	}
	p, err := s.DBFilePath(0x20)
	if err != nil || filepath.Base(p) != "0000000000000020.snap.db" {
		t.Fatal(p, err)
	}
	if b, _ := os.ReadFile(p); string(b) != "bolt file" {
		t.Fatalf("%q", b)
	}
	if _, err := s.SaveDBFrom(iotestErrReader{}, 0x21); err == nil {
		t.Fatal("no error from a failing reader")
	}
	es, _ := os.ReadDir(dir)
	if len(es) != 1 {
		t.Fatalf("left behind: %v", es)
	}
	if err := s.ReleaseSnapDBs(testSnap(1, 0x30)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("old .snap.db kept")
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestPurge(t *testing.T) {
	dir := t.TempDir()
	s := New(nil, dir)
	for i := uint64(1); i <= 5; i++ {
		s.SaveSnap(testSnap(1, i))
	}
	os.WriteFile(filepath.Join(dir, "0000000000000001.snap.db"), nil, 0o600)
	if p, err := PurgeSnapshots(nil, dir, 0); err != nil || len(p) != 0 {
		t.Fatal(p, err)
	}
	p, err := PurgeSnapshots(nil, dir, 2)
	if err != nil || len(p) != 3 || p[0] != "0000000000000001-0000000000000001.snap" {
		t.Fatal(p, err)
	}
	es, _ := os.ReadDir(dir)
	if len(es) != 3 { // two .snap and the .snap.db
		t.Fatalf("%v", es)
	}
}

// Old WAL segments are purged only once the WAL released their locks.
func TestPurgeWALs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w, err := wal.Create(nil, dir, nil, wal.Options{SegmentSizeBytes: 16 * 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	big := make([]byte, 9000)
	for i := uint64(1); i <= 12; i++ {
		if err := w.Save(raftpb.HardState{Term: 1, Commit: i}, []raftpb.Entry{{Term: 1, Index: i, Data: big}}); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		es, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
		return len(es)
	}
	before := count()
	if before < 5 {
		t.Fatalf("%d segments", before)
	}
	if p, err := PurgeWALs(nil, dir, 1); err != nil || len(p) != 0 {
		t.Fatalf("purged locked segments: %v %v", p, err)
	}
	if err := w.ReleaseLockTo(12); err != nil {
		t.Fatal(err)
	}
	p, err := PurgeWALs(nil, dir, 1)
	if err != nil || len(p) == 0 || count() != before-len(p) || count() < 1 {
		t.Fatalf("purged %v (%v), %d left of %d", p, err, count(), before)
	}
	// The WAL still appends after the purge.
	if err := w.Save(raftpb.HardState{Term: 1, Commit: 13}, []raftpb.Entry{{Term: 1, Index: 13}}); err != nil {
		t.Fatal(err)
	}
}

// A received database is synced chunk by chunk, never in one flush at the
// end (which would stall every other fsync on the disk for its duration).
func TestCopyPacedSyncsEachChunk(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var synced []int64
	sync := func(f *os.File) error {
		st, err := f.Stat()
		if err != nil {
			return err
		}
		synced = append(synced, st.Size())
		return nil
	}
	n, err := copyPaced(f, strings.NewReader("0123456789"), 4, sync)
	if err != nil || n != 10 {
		t.Fatal(n, err)
	}
	if fmt.Sprint(synced) != "[4 8 10]" {
		t.Fatalf("synced at sizes %v, want [4 8 10]", synced)
	}
	if b, _ := os.ReadFile(f.Name()); string(b) != "0123456789" {
		t.Fatalf("%q", b)
	}
	fail := func(*os.File) error { return errors.New("disk gone") }
	if _, err := copyPaced(f, strings.NewReader("abc"), 2, fail); err == nil || err.Error() != "disk gone" {
		t.Fatalf("sync error not returned: %v", err)
	}
}
