package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap/zaptest"
)

const testSegSize = 64 * 1024

func testOpts() Options { return Options{SegmentSizeBytes: testSegSize} }

func ents(term uint64, from, to uint64) []raftpb.Entry {
	var es []raftpb.Entry
	for i := from; i <= to; i++ {
		es = append(es, raftpb.Entry{Term: term, Index: i, Type: raftpb.EntryNormal, Data: []byte("data-" + string(rune('a'+i%26)))})
	}
	return es
}

func mustCreate(t *testing.T, dir string, md []byte) *WAL {
	t.Helper()
	w, err := Create(zaptest.NewLogger(t), dir, md, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func mustReadAll(t *testing.T, dir string, snap Snapshot) (*WAL, []byte, raftpb.HardState, []raftpb.Entry) {
	t.Helper()
	w, err := Open(zaptest.NewLogger(t), dir, snap, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	md, st, es, err := w.ReadAll()
	if err != nil {
		w.Close()
		t.Fatal(err)
	}
	return w, md, st, es
}

func TestFrameSize(t *testing.T) {
	for n := 0; n < 40; n++ {
		lf, pad := encodeFrameSize(n)
		if (n+pad)%8 != 0 || pad < 0 || pad > 7 {
			t.Fatalf("n=%d pad=%d", n, pad)
		}
		if pad > 0 && lf>>56 != uint64(0x80|pad) {
			t.Fatalf("n=%d top byte %x", n, lf>>56)
		}
		gn, gpad := decodeFrameSize(lf)
		if gn != int64(n) || gpad != int64(pad) {
			t.Fatalf("n=%d: decoded %d,%d", n, gn, gpad)
		}
	}
}

// The expected bytes are what etcd's gogo-generated walpb code produces.
func TestRecordEncoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  int64
		crc  uint32
		data []byte
		want []byte
	}{
		{"crc record, no data", CrcType, 0, nil, []byte{0x08, 0x04, 0x10, 0x00}},
		{"empty but present data", MetadataType, 1, []byte{}, []byte{0x08, 0x01, 0x10, 0x01, 0x1a, 0x00}},
		{"entry", EntryType, 0x12345678, []byte("ab"), []byte{0x08, 0x02, 0x10, 0xf8, 0xac, 0xd1, 0x91, 0x01, 0x1a, 0x02, 'a', 'b'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := appendRecordBody(nil, tc.typ, tc.crc, tc.data)
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("got % x want % x", got, tc.want)
			}
			var rec Record
			if err := decodeRecordBody(got, &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Type != tc.typ || rec.Crc != tc.crc || !bytes.Equal(rec.Data, tc.data) || (rec.Data == nil) != (tc.data == nil) {
				t.Fatalf("decoded %+v", rec)
			}
			fr := appendFrame(nil, tc.typ, tc.crc, tc.data)
			if len(fr)%8 != 0 || !bytes.Equal(fr[8:8+len(got)], got) {
				t.Fatalf("frame % x", fr)
			}
		})
	}
}

func TestSnapshotEncoding(t *testing.T) {
	for _, tc := range []struct {
		s    Snapshot
		want []byte
	}{
		{Snapshot{}, []byte{0x08, 0x00, 0x10, 0x00}},
		{Snapshot{Index: 5, Term: 2, ConfState: &raftpb.ConfState{Voters: []uint64{1}}}, []byte{0x08, 0x05, 0x10, 0x02, 0x1a, 0x04, 0x08, 0x01, 0x28, 0x00}},
	} {
		b, err := tc.s.marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, tc.want) {
			t.Fatalf("%+v: got % x want % x", tc.s, b, tc.want)
		}
		got, err := unmarshalSnapshot(b)
		if err != nil || !reflect.DeepEqual(got, tc.s) {
			t.Fatalf("round trip %+v -> %+v (%v)", tc.s, got, err)
		}
	}
}

func TestCreateExisting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, []byte("m"))
	w.Close()
	if _, err := Create(nil, dir, nil, testOpts()); !errors.Is(err, ErrExist) {
		t.Fatalf("got %v", err)
	}
	if !Exist(dir) || Exist(t.TempDir()) {
		t.Fatal("Exist")
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v %v", st.Mode(), err)
	}
}

func TestRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, []byte("metadata"))
	if _, err := os.Stat(filepath.Join(dir, "0.tmp")); err != nil {
		t.Fatalf("next segment not prepared: %v", err)
	}
	st := raftpb.HardState{Term: 1, Vote: 1, Commit: 3}
	if err := w.Save(st, ents(1, 1, 5)); err != nil {
		t.Fatal(err)
	}
	snap := Snapshot{Index: 3, Term: 1, ConfState: &raftpb.ConfState{Voters: []uint64{1}}}
	if err := w.SaveSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	st2 := raftpb.HardState{Term: 2, Vote: 1, Commit: 5}
	if err := w.Save(st2, ents(2, 6, 7)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "0.tmp")); !os.IsNotExist(err) {
		t.Fatalf("0.tmp left after close: %v", err)
	}

	w2, md, gst, ges := mustReadAll(t, dir, snap)
	defer w2.Close()
	if string(md) != "metadata" || gst != st2 {
		t.Fatalf("md %q st %+v", md, gst)
	}
	want := append(ents(1, 4, 5), ents(2, 6, 7)...)
	if !reflect.DeepEqual(ges, want) {
		t.Fatalf("entries %+v want %+v", ges, want)
	}
	// Appending continues the chain.
	if err := w2.Save(raftpb.HardState{Term: 2, Vote: 1, Commit: 8}, ents(2, 8, 8)); err != nil {
		t.Fatal(err)
	}
	w2.Close()
	w3, _, _, ges3 := mustReadAll(t, dir, Snapshot{})
	w3.Close()
	if len(ges3) != 8 || ges3[7].Index != 8 {
		t.Fatalf("got %d entries", len(ges3))
	}

	// Read-only open sees the same and locks nothing.
	r, err := OpenForRead(nil, dir, snap)
	if err != nil {
		t.Fatal(err)
	}
	_, _, res, err := r.ReadAll()
	if err != nil || len(res) != 5 {
		t.Fatalf("read-only: %d entries, %v", len(res), err)
	}
	if err := r.Save(st, nil); !errors.Is(err, ErrNotWritable) {
		t.Fatalf("save on read-only: %v", err)
	}
	r.Close()

	hs, err := Verify(nil, dir, snap)
	if err != nil || hs.Commit != 8 {
		t.Fatalf("verify %+v %v", hs, err)
	}
	if _, err := Verify(nil, dir, Snapshot{Index: 3, Term: 9}); !errors.Is(err, ErrSnapshotMismatch) {
		t.Fatalf("verify mismatch: %v", err)
	}
	snaps, err := ValidSnapshotEntries(nil, dir)
	if err != nil || len(snaps) != 2 || snaps[1].Index != 3 || snaps[1].ConfState == nil {
		t.Fatalf("valid snapshots %+v %v", snaps, err)
	}
}

func TestSnapshotNotFound(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, nil)
	w.Save(raftpb.HardState{Term: 1, Commit: 2}, ents(1, 1, 2))
	w.Close()
	w, err := Open(nil, dir, Snapshot{Index: 1, Term: 1}, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, _, es, err := w.ReadAll()
	if !errors.Is(err, ErrSnapshotNotFound) || len(es) != 1 {
		t.Fatalf("%v %d", err, len(es))
	}
	if _, _, _, err := w.ReadAll(); !errors.Is(err, ErrDecoderNotFound) {
		t.Fatalf("second ReadAll: %v", err)
	}
}

func TestOverwriteAndGap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, nil)
	w.Save(raftpb.HardState{Term: 1, Vote: 1}, ents(1, 1, 5))
	// A new leader overwrites the uncommitted suffix from index 3.
	w.Save(raftpb.HardState{Term: 2, Vote: 2}, ents(2, 3, 4))
	w.Close()
	w2, _, st, es := mustReadAll(t, dir, Snapshot{})
	want := append(ents(1, 1, 2), ents(2, 3, 4)...)
	if !reflect.DeepEqual(es, want) || st.Term != 2 {
		t.Fatalf("got %+v", es)
	}
	// A gap after the entries read is an error, with the contiguous prefix returned.
	w2.Save(raftpb.HardState{}, ents(2, 9, 9))
	w2.Close()
	w3, err := Open(nil, dir, Snapshot{}, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer w3.Close()
	_, _, es, err = w3.ReadAll()
	if !errors.Is(err, ErrSliceOutOfRange) || len(es) != 4 {
		t.Fatalf("%v %d", err, len(es))
	}
}

func TestSyncRules(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	var syncs int
	opts := testOpts()
	opts.OnFsync = func(time.Duration) { syncs++ }
	w, err := Create(nil, dir, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, step := range []struct {
		st       raftpb.HardState
		ents     []raftpb.Entry
		wantSync bool
	}{
		{raftpb.HardState{}, nil, false},                // nothing at all
		{raftpb.HardState{Term: 1, Vote: 1}, nil, true}, // vote
		{raftpb.HardState{Term: 1, Vote: 1, Commit: 0}, ents(1, 1, 1), true},
		{raftpb.HardState{Term: 1, Vote: 1, Commit: 1}, nil, false}, // commit only
		{raftpb.HardState{}, ents(1, 2, 2), true},
		{raftpb.HardState{Term: 2, Vote: 1, Commit: 1}, nil, true}, // term
	} {
		before := syncs
		if err := w.Save(step.st, step.ents); err != nil {
			t.Fatal(err)
		}
		if got := syncs > before; got != step.wantSync {
			t.Fatalf("save %+v %d entries: synced=%v", step.st, len(step.ents), got)
		}
	}
}

func TestCutSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, []byte("md"))
	big := make([]byte, 10000)
	var idx uint64
	for i := 0; i < 40; i++ {
		idx++
		e := []raftpb.Entry{{Term: 1, Index: idx, Data: big}}
		if err := w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: idx}, e); err != nil {
			t.Fatal(err)
		}
	}
	names, err := readWALNames(zaptest.NewLogger(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 5 {
		t.Fatalf("only %d segments", len(names))
	}
	for i, n := range names {
		if n.seq != uint64(i) {
			t.Fatalf("segment %d is %s", i, n.name)
		}
		if i > 0 {
			fi, _ := os.Stat(filepath.Join(dir, names[i-1].name))
			if fi.Size() < testSegSize || fi.Size()%8 != 0 {
				t.Fatalf("%s has size %d", names[i-1].name, fi.Size())
			}
		}
	}
	// Segments 0..k hold entries below the release index: all but the one
	// holding index 25 and before are released and can be purged.
	if err := w.ReleaseLockTo(25); err != nil {
		t.Fatal(err)
	}
	if w.segs[0].index > 25 || len(w.segs) > 1 && w.segs[1].index < 25 {
		t.Fatalf("kept %v", w.segs)
	}
	l, err := fileutil.TryLockFile(filepath.Join(dir, names[0].name), os.O_WRONLY, fileutil.PrivateFileMode)
	if err != nil {
		t.Fatalf("released segment still locked: %v", err)
	}
	l.Close()
	if _, err := fileutil.TryLockFile(filepath.Join(dir, names[len(names)-1].name), os.O_WRONLY, fileutil.PrivateFileMode); !errors.Is(err, fileutil.ErrLocked) {
		t.Fatalf("tail not locked: %v", err)
	}
	if _, err := Open(nil, dir, Snapshot{}, testOpts()); !errors.Is(err, fileutil.ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	w.Close()

	w2, md, st, es := mustReadAll(t, dir, Snapshot{})
	defer w2.Close()
	if string(md) != "md" || len(es) != 40 || st.Commit != 40 {
		t.Fatalf("md %q, %d entries, %+v", md, len(es), st)
	}
	// Open at a later snapshot starts at the segment holding it.
	snaps, err := ValidSnapshotEntries(nil, dir)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("%v %v", snaps, err)
	}
}

// A record whose write failed leaves the WAL refusing appends.
func TestWriteFailureRefusesAppends(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, nil)
	w.Save(raftpb.HardState{Term: 1, Vote: 1}, ents(1, 1, 2))
	w.tail().f.Close() // the next write fails with "file already closed"
	err := w.Save(raftpb.HardState{Term: 1, Vote: 1}, ents(1, 3, 3))
	if err == nil {
		t.Fatal("write to a closed file succeeded")
	}
	if err := w.Save(raftpb.HardState{Term: 1, Vote: 1}, ents(1, 3, 3)); !errors.Is(err, ErrFailed) {
		t.Fatalf("second save: %v", err)
	}
	if err := w.SaveSnapshot(Snapshot{}); !errors.Is(err, ErrFailed) {
		t.Fatalf("snapshot: %v", err)
	}
	w.Close()
	w2, _, _, es := mustReadAll(t, dir, Snapshot{})
	w2.Close()
	if len(es) != 2 {
		t.Fatalf("%d entries", len(es))
	}
}

func TestSaveSnapshotNeedsConfState(t *testing.T) {
	w := mustCreate(t, filepath.Join(t.TempDir(), "wal"), nil)
	defer w.Close()
	if err := w.SaveSnapshot(Snapshot{Index: 1, Term: 1}); !errors.Is(err, ErrSnapshotNoConfState) {
		t.Fatal(err)
	}
}

func TestBadSequence(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustCreate(t, dir, nil)
	w.Close()
	if err := os.WriteFile(filepath.Join(dir, walName(2, 5)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(nil, dir, Snapshot{}, testOpts()); !errors.Is(err, ErrBadSequence) {
		t.Fatalf("got %v", err)
	}
	if _, err := Open(nil, t.TempDir(), Snapshot{}, testOpts()); !errors.Is(err, ErrFileNotFound) {
		t.Fatalf("empty dir: %v", err)
	}
}

// frameOffsets lists the [start, end) offsets of every frame in a segment.
func frameOffsets(t *testing.T, path string) [][2]int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]int64
	for off := int64(0); off+8 <= int64(len(b)); {
		lf := binary.LittleEndian.Uint64(b[off:])
		if lf == 0 {
			break
		}
		n, pad := decodeFrameSize(lf)
		out = append(out, [2]int64{off, off + 8 + n + pad})
		off += 8 + n + pad
	}
	return out
}

var _ = io.EOF
