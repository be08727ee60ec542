package v3concurrency

import (
	"encoding/hex"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// The wire bytes and JSON of the hand-declared messages, by etcd's field
// numbers and names (v3lock.proto, v3election.proto). The e2e tests check
// the same against a live etcd 3.6.16.
func TestMessageEncoding(t *testing.T) {
	for _, tc := range []struct {
		m        protoadapt.MessageV1
		wire     string
		jsonText string
	}{
		{&LockRequest{Name: []byte("l"), Lease: 2}, "0a016c1002", `{"name":"bA==","lease":"2"}`},
		{&LockResponse{Header: &pb.ResponseHeader{Revision: 5}, Key: []byte("k")}, "0a0218051201" + "6b", `{"header":{"revision":"5"},"key":"aw=="}`},
		{&UnlockRequest{Key: []byte("k")}, "0a016b", `{"key":"aw=="}`},
		{&CampaignRequest{Name: []byte("n"), Lease: 1, Value: []byte("v")}, "0a016e10011a0176", `{"name":"bg==","lease":"1","value":"dg=="}`},
		{&LeaderKey{Name: []byte("e"), Key: []byte("e/1"), Rev: 3, Lease: 4}, "0a01651203652f3118032004",
			`{"name":"ZQ==","key":"ZS8x","rev":"3","lease":"4"}`},
		{&ProclaimRequest{Leader: &LeaderKey{Rev: 1}, Value: []byte("v")}, "0a02180112017" + "6", `{"leader":{"rev":"1"},"value":"dg=="}`},
		{&LeaderResponse{Kv: &mvccpb.KeyValue{Key: []byte("k")}}, "12030a016b", `{"kv":{"key":"aw=="}}`},
	} {
		m2 := protoadapt.MessageV2Of(tc.m)
		b, err := proto.Marshal(m2)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(b); got != tc.wire {
			t.Errorf("%T: wire %s, want %s", tc.m, got, tc.wire)
		}
		j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m2)
		if err != nil {
			t.Fatal(err)
		}
		var back, want any = compactJSON(t, j), compactJSON(t, []byte(tc.jsonText))
		if back != want {
			t.Errorf("%T: JSON %s, want %s", tc.m, back, want)
		}
		// and back from the wire
		fresh := m2.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(b, fresh); err != nil || !proto.Equal(fresh, m2) {
			t.Errorf("%T: unmarshal gave %v, %v", tc.m, fresh, err)
		}
	}
}

func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var out []byte
	inString := false
	for i, c := range b {
		if c == '"' && (i == 0 || b[i-1] != '\\') {
			inString = !inString
		}
		if !inString && (c == ' ' || c == '\n') {
			continue
		}
		out = append(out, c)
	}
	return string(out)
}
