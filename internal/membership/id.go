package membership

import (
	"crypto/sha1"
	"encoding/binary"
	"slices"
	"strconv"
	"time"
)

// ComputeMemberID derives a member ID the way etcd does, so that cairn and
// etcd tooling agree on identities: the first 8 bytes (big-endian) of
// sha1(concat(sorted peer URLs) + token [+ decimal unix seconds of now]).
// now is nil for members created at bootstrap and set for members added at
// runtime, whose IDs are therefore time based.
func ComputeMemberID(peerURLs []string, token string, now *time.Time) uint64 {
	urls := slices.Clone(peerURLs)
	slices.Sort(urls)
	var b []byte
	for _, u := range urls {
		b = append(b, u...)
	}
	b = append(b, token...)
	if now != nil {
		b = strconv.AppendInt(b, now.Unix(), 10)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// ComputeClusterID derives the cluster ID from the IDs of the bootstrap
// members: sha1 over their 8-byte big-endian encodings in ascending order,
// first 8 bytes big-endian.
func ComputeClusterID(memberIDs []uint64) uint64 {
	ids := slices.Clone(memberIDs)
	slices.Sort(ids)
	b := make([]byte, 8*len(ids))
	for i, id := range ids {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// FormatID renders an ID as etcd does in text: lowercase hex, no padding.
func FormatID(id uint64) string { return strconv.FormatUint(id, 16) }

// ParseID parses the text form written by FormatID.
func ParseID(s string) (uint64, error) { return strconv.ParseUint(s, 16, 64) }
