package rafthttp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// hexBytes parses spaced hex as written in the spec.
func hexBytes(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkGolden compares got with testdata/name (spaced hex, one record per
// line), or rewrites it with -update.
func checkGolden(t *testing.T, name string, records [][]byte) {
	t.Helper()
	var sb strings.Builder
	for _, r := range records {
		sb.WriteString(hex.EncodeToString(r))
		sb.WriteByte('\n')
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if sb.String() != string(want) {
		t.Errorf("%s differs:\ngot:\n%swant:\n%s", name, sb.String(), want)
	}
}

func TestLinkHeartbeatGolden(t *testing.T) {
	// Spec 3.2: etcd's link heartbeat body, observed on the wire.
	body := hexBytes(t, "08 08 10 00 18 00 20 00 28 00 30 00 40 00 50 00 58 00 68 00")
	var buf bytes.Buffer
	enc := &messageEncoder{w: &buf}
	if err := enc.encode(&linkHeartbeat); err != nil {
		t.Fatal(err)
	}
	want := append(hexBytes(t, "00 00 00 00 00 00 00 14"), body...)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("link heartbeat frame\n got %x\nwant %x", buf.Bytes(), want)
	}
	// Both etcd's 20 bytes and the minimal "08 08" decode as a heartbeat.
	for _, b := range [][]byte{body, hexBytes(t, "08 08")} {
		frame := append(hexBytes(t, "00 00 00 00 00 00 00 00"), b...)
		frame[7] = byte(len(b))
		m, err := (&messageDecoder{r: bytes.NewReader(frame)}).decode()
		if err != nil || !isLinkHeartbeat(&m) {
			t.Errorf("decode %x: %v %+v, want a link heartbeat", b, err, m)
		}
	}
	// msgappv2: one byte.
	buf.Reset()
	if err := (&msgAppV2Encoder{w: &buf}).encode(&linkHeartbeat); err != nil || !bytes.Equal(buf.Bytes(), []byte{0}) {
		t.Fatalf("msgappv2 heartbeat: %v %x", err, buf.Bytes())
	}
}

func sampleMessages() []raftpb.Message {
	return []raftpb.Message{
		{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 3, Commit: 9},
		{Type: raftpb.MsgHeartbeatResp, From: 2, To: 1, Term: 3, Context: []byte("ctx")},
		{Type: raftpb.MsgApp, From: 1, To: 2, Term: 3, LogTerm: 2, Index: 7, Commit: 7,
			Entries: []raftpb.Entry{{Term: 3, Index: 8, Data: []byte("a")}, {Term: 3, Index: 9, Type: raftpb.EntryConfChange, Data: []byte{1, 2}}}},
		{Type: raftpb.MsgAppResp, From: 2, To: 1, Term: 3, Index: 9, Reject: true, RejectHint: 4, LogTerm: 2},
		{Type: raftpb.MsgVote, From: 1, To: 2, Term: 4, LogTerm: 3, Index: 9},
		{Type: raftpb.MsgPreVoteResp, From: 2, To: 1, Term: 4, Reject: true},
		{Type: raftpb.MsgProp, From: 2, To: 1, Entries: []raftpb.Entry{{Data: []byte("proposal")}}},
		{Type: raftpb.MsgReadIndex, From: 2, To: 1, Entries: []raftpb.Entry{{Data: []byte{0, 0, 0, 0, 0, 0, 0, 7}}}},
		{Type: raftpb.MsgTimeoutNow, From: 1, To: 2, Term: 4},
		{Type: raftpb.MsgSnap, From: 1, To: 2, Term: 4, Snapshot: &raftpb.Snapshot{
			Data: []byte("{}"), Metadata: raftpb.SnapshotMetadata{Index: 10, Term: 3, ConfState: raftpb.ConfState{Voters: []uint64{1, 2}}}}},
	}
}

func TestMessageCodecRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	enc := &messageEncoder{w: &buf}
	msgs := sampleMessages()
	for i := range msgs {
		if err := enc.encode(&msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	dec := &messageDecoder{r: &buf}
	for i, want := range msgs {
		got, err := dec.decode()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Errorf("message %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	if _, err := dec.decode(); err != io.EOF {
		t.Errorf("after the last message: %v, want io.EOF", err)
	}
}

// normalize maps empty slices to nil so that decoded messages compare
// equal to literals.
func normalize(m raftpb.Message) raftpb.Message {
	if len(m.Entries) == 0 {
		m.Entries = nil
	}
	for i := range m.Entries {
		if len(m.Entries[i].Data) == 0 {
			m.Entries[i].Data = nil
		}
	}
	if len(m.Context) == 0 {
		m.Context = nil
	}
	if len(m.Responses) == 0 {
		m.Responses = nil
	}
	return m
}

func TestMessageDecoderErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		limit uint64
		want  error
	}{
		{"length above 512 MiB", "00 00 00 00 20 00 00 01", 0, ErrMessageTooLarge},
		{"length above a custom limit", "00 00 00 00 00 00 00 05 08 08 10 00 18", 4, ErrMessageTooLarge},
		{"clean end", "", 0, io.EOF},
		{"short length", "00 00 00", 0, io.ErrUnexpectedEOF},
		{"short body", "00 00 00 00 00 00 00 05 08 08", 0, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&messageDecoder{r: bytes.NewReader(hexBytes(t, tt.input)), limit: tt.limit}).decode()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// The error text is etcd's.
	if ErrMessageTooLarge.Error() != "rafthttp: error limit exceeded" {
		t.Error(ErrMessageTooLarge)
	}
}

func ents(term uint64, from, to uint64) []raftpb.Entry {
	var es []raftpb.Entry
	for i := from; i <= to; i++ {
		es = append(es, raftpb.Entry{Term: term, Index: i, Data: []byte{byte(i)}})
	}
	return es
}

// msgAppSequence is what a leader (1) sends follower 2 over one msgappv2
// stream: a first MsgApp (full), continuations (AppEntries), a link
// heartbeat between them, a commit-only MsgApp, then a new leader term
// (full again) and its continuation.
func msgAppSequence() ([]raftpb.Message, []byte) {
	msgs := []raftpb.Message{
		{Type: raftpb.MsgApp, From: 1, To: 2, Term: 2, LogTerm: 1, Index: 5, Commit: 5, Entries: ents(2, 6, 7)},
		{Type: raftpb.MsgApp, From: 1, To: 2, Term: 2, LogTerm: 2, Index: 7, Commit: 7, Entries: ents(2, 8, 8)},
		linkHeartbeat,
		{Type: raftpb.MsgApp, From: 1, To: 2, Term: 2, LogTerm: 2, Index: 8, Commit: 8},
		{Type: raftpb.MsgApp, From: 1, To: 2, Term: 2, LogTerm: 2, Index: 8, Commit: 8, Entries: ents(2, 9, 10)},
		linkHeartbeat,
		{Type: raftpb.MsgApp, From: 1, To: 2, Term: 3, LogTerm: 2, Index: 10, Commit: 10, Entries: ents(3, 11, 11)},
		{Type: raftpb.MsgApp, From: 1, To: 2, Term: 3, LogTerm: 3, Index: 11, Commit: 11},
	}
	// The tag of each record: 0x02 full, 0x01 AppEntries, 0x00 heartbeat.
	tags := []byte{0x02, 0x01, 0x00, 0x01, 0x01, 0x00, 0x02, 0x01}
	return msgs, tags
}

func TestMsgAppV2Sequence(t *testing.T) {
	msgs, tags := msgAppSequence()
	var records [][]byte
	var stream bytes.Buffer
	enc := &msgAppV2Encoder{w: &stream}
	for i := range msgs {
		before := stream.Len()
		if err := enc.encode(&msgs[i]); err != nil {
			t.Fatal(err)
		}
		rec := append([]byte(nil), stream.Bytes()[before:]...)
		if rec[0] != tags[i] {
			t.Errorf("record %d has tag %#x, want %#x", i, rec[0], tags[i])
		}
		records = append(records, rec)
	}
	checkGolden(t, "msgappv2_sequence.hex", records)

	// Hand-check the commit-only AppEntries record (spec 3.3): tag, count
	// 0, commit 8.
	if want := hexBytes(t, "01 0000000000000000 0000000000000008"); !bytes.Equal(records[3], want) {
		t.Errorf("commit-only record %x, want %x", records[3], want)
	}
	// And the one-entry continuation: tag, count 1, entry length + entry,
	// commit 7.
	e := msgs[1].Entries[0]
	eb, _ := e.Marshal()
	want := append(hexBytes(t, "01 0000000000000001 00000000000000"), byte(len(eb)))
	want = append(append(want, eb...), hexBytes(t, "0000000000000007")...)
	if !bytes.Equal(records[1], want) {
		t.Errorf("continuation record %x, want %x", records[1], want)
	}

	// Decoding rebuilds every MsgApp, From and To coming from the stream.
	dec := &msgAppV2Decoder{r: &stream, local: 2, remote: 1}
	for i, want := range msgs {
		got, err := dec.decode()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	if _, err := dec.decode(); err != io.EOF {
		t.Errorf("after the last record: %v, want io.EOF", err)
	}
}

func TestMsgAppV2DecoderErrors(t *testing.T) {
	tests := []struct {
		name, input, wantText string
		want                  error
	}{
		{"unknown tag", "03", "failed to parse type 3 in msgappv2 stream", nil},
		{"clean end", "", "", io.EOF},
		{"cut in a count", "01 00 00", "", io.ErrUnexpectedEOF},
		{"cut before the commit", "01 0000000000000000", "", io.ErrUnexpectedEOF},
		{"huge entry count", "01 0000010000000000", "", ErrMessageTooLarge},
		{"huge entry", "01 0000000000000001 0000000100000000", "", ErrMessageTooLarge},
		{"huge message", "02 0000000100000000", "", ErrMessageTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&msgAppV2Decoder{r: bytes.NewReader(hexBytes(t, tt.input))}).decode()
			switch {
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("got %v, want %v", err, tt.want)
			case tt.wantText != "" && (err == nil || err.Error() != tt.wantText):
				t.Fatalf("got %v, want %q", err, tt.wantText)
			}
		})
	}
}

// The shared state is per connection: a fresh encoder starts with a full
// message even when the previous connection's state would have allowed
// AppEntries.
func TestMsgAppV2StatePerConnection(t *testing.T) {
	msgs, _ := msgAppSequence()
	var a, b bytes.Buffer
	ea := &msgAppV2Encoder{w: &a}
	for i := range msgs[:2] {
		if err := ea.encode(&msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	eb := &msgAppV2Encoder{w: &b}
	if err := eb.encode(&msgs[1]); err != nil {
		t.Fatal(err)
	}
	if b.Bytes()[0] != tagFullMessage {
		t.Fatalf("first record on a new connection has tag %#x, want 0x02", b.Bytes()[0])
	}
	// A non-MsgApp never takes the short form, even when its fields match.
	var c bytes.Buffer
	ec := &msgAppV2Encoder{w: &c}
	if err := ec.encode(&raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2}); err != nil {
		t.Fatal(err)
	}
	if c.Bytes()[0] != tagFullMessage {
		t.Fatalf("MsgHeartbeat record has tag %#x, want 0x02", c.Bytes()[0])
	}
}
