package v3concurrency

import (
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/protoadapt"
)

// The messages of etcd's v3lockpb and v3electionpb packages live in etcd's
// server module, which cairn does not import. cairn declares them itself
// (lock_types.go, election_types.go) with etcd's field numbers, names and
// types, so their bytes on the wire and their JSON are etcd's. They are
// plain protobuf v1 messages (Reset, String, ProtoMessage) described only by
// their struct tags, from which the protobuf runtime derives their
// descriptors; gRPC's proto codec and the gateway's JSON marshaler reach
// them through that runtime (protoadapt.MessageV2Of). Nested etcd types
// (ResponseHeader, KeyValue) are etcd's own.

// text is a message in the protobuf text format, for String.
func text(m protoadapt.MessageV1) string {
	return prototext.MarshalOptions{}.Format(protoadapt.MessageV2Of(m))
}
