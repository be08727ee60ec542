package schema

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// LeaseRecord is one record of bucket `lease`: etcd's leasepb.Lease, stored
// under the 8-byte big-endian lease ID. The value is the protobuf encoding of
// {ID (1), TTL (2), RemainingTTL (3)}, each an int64 varint left out when 0,
// byte for byte what etcd 3.6 writes (checked against an etcd data dir).
type LeaseRecord struct {
	ID int64
	// TTL is the granted TTL in seconds (after the minimum TTL was applied).
	TTL int64
	// RemainingTTL is the last checkpointed remaining TTL in seconds; 0
	// means none (the full TTL applies).
	RemainingTTL int64
}

// LeaseKey is the bucket key of lease id.
func LeaseKey(id int64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(id))
	return k
}

// Marshal encodes r as etcd does.
func (r LeaseRecord) Marshal() []byte {
	b := make([]byte, 0, 3*11)
	for _, f := range [...]struct {
		num protowire.Number
		v   int64
	}{{1, r.ID}, {2, r.TTL}, {3, r.RemainingTTL}} {
		if f.v != 0 {
			b = protowire.AppendTag(b, f.num, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(f.v))
		}
	}
	return b
}

// UnmarshalLease decodes a lease record; unknown fields are skipped, as a
// protobuf decoder does.
func UnmarshalLease(b []byte) (LeaseRecord, error) {
	var r LeaseRecord
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return r, fmt.Errorf("lease record: %w", ErrCorrupt)
		}
		b = b[n:]
		if typ == protowire.VarintType && num >= 1 && num <= 3 {
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return r, fmt.Errorf("lease record field %d: %w", num, ErrCorrupt)
			}
			b = b[m:]
			switch num {
			case 1:
				r.ID = int64(v)
			case 2:
				r.TTL = int64(v)
			case 3:
				r.RemainingTTL = int64(v)
			}
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return r, fmt.Errorf("lease record field %d: %w", num, ErrCorrupt)
		}
		b = b[m:]
	}
	return r, nil
}

// ReadLeases returns every record of bucket `lease`, in key order. A record
// that does not decode is an error naming its ID (etcd refuses to start on
// one too).
func ReadLeases(r Reader) ([]LeaseRecord, error) {
	var out []LeaseRecord
	var err error
	r.Range(Lease, nil, nil, 0, func(k, v []byte) bool {
		if len(k) != 8 {
			err = fmt.Errorf("lease key %x: %w", k, ErrCorrupt)
			return false
		}
		rec, derr := UnmarshalLease(v)
		if derr != nil {
			err = fmt.Errorf("lease %016x: %w", binary.BigEndian.Uint64(k), derr)
			return false
		}
		out = append(out, rec)
		return true
	})
	return out, err
}
