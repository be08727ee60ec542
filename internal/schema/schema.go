// Package schema names etcd's bbolt buckets and meta keys and reads and
// writes the small records stored in them, byte-compatible with etcd 3.6.
//
// Write helpers take the backend's *backend.WriteTx and follow its threading
// rule (only the goroutine holding it). Read helpers take a Reader: a
// backend.ReadView (any goroutine) or the *backend.WriteTx itself.
package schema

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairnkv/cairn/internal/backend"
)

// Bucket names, exactly as etcd 3.6 (server/storage/schema/bucket.go).
var (
	Key            = []byte("key")
	Meta           = []byte("meta")
	Lease          = []byte("lease")
	Alarm          = []byte("alarm")
	Cluster        = []byte("cluster")
	Members        = []byte("members")
	MembersRemoved = []byte("members_removed")
	Auth           = []byte("auth")
	AuthUsers      = []byte("authUsers")
	AuthRoles      = []byte("authRoles")
)

// AllBuckets are the buckets a fresh etcd 3.6 member creates.
var AllBuckets = [][]byte{Key, Meta, Lease, Alarm, Cluster, Members, MembersRemoved, Auth, AuthUsers, AuthRoles}

// Keys in the meta, cluster and auth buckets.
var (
	MetaConsistentIndexKey = []byte("consistent_index") // 8-byte big-endian
	MetaTermKey            = []byte("term")             // 8-byte big-endian
	MetaConfStateKey       = []byte("confState")        // JSON of raftpb.ConfState
	MetaStorageVersionKey  = []byte("storageVersion")   // e.g. "3.6.0"
	ScheduledCompactKey    = []byte("scheduledCompactRev")
	FinishedCompactKey     = []byte("finishedCompactRev")
	ClusterVersionKey      = []byte("clusterVersion")
	ClusterDowngradeKey    = []byte("downgrade")
	AuthEnabledKey         = []byte("authEnabled")
	AuthRevisionKey        = []byte("authRevision")
)

// StorageVersion is the storage version cairn writes (what etcd 3.6 writes).
const StorageVersion = "3.6.0"

// ErrCorrupt marks a record that cannot be decoded.
var ErrCorrupt = errors.New("schema: corrupt record")

// Reader is the read side shared by backend.ReadView and *backend.WriteTx.
type Reader interface {
	Get(bucket, key []byte) ([]byte, bool)
	Range(bucket, start, end []byte, limit int, fn func(k, v []byte) bool)
}

var (
	_ Reader = backend.ReadView{}
	_ Reader = (*backend.WriteTx)(nil)
)

// Init creates every bucket etcd 3.6 creates and, when absent, writes
// meta/storageVersion and auth/authRevision 1. Idempotent.
//
// etcd's auth store writes authRevision 1 at every start that finds it
// absent or 0 (server/auth/store.go NewAuthStore), auth enabled or not, so
// every etcd backend has it. Without it Maintenance.Hash and `etcdutl
// snapshot status`, which hash every bucket, differ from etcd's for the same
// data, and etcd writes the key itself when it starts on the data dir.
func Init(tx *backend.WriteTx) error {
	for _, b := range AllBuckets {
		if err := tx.CreateBucket(b); err != nil {
			return fmt.Errorf("schema init: %w", err)
		}
	}
	if _, ok := tx.Get(Meta, MetaStorageVersionKey); !ok {
		if err := WriteStorageVersion(tx, StorageVersion); err != nil {
			return err
		}
	}
	if v, ok := tx.Get(Auth, AuthRevisionKey); !ok || (len(v) == 8 && binary.BigEndian.Uint64(v) == 0) {
		if err := tx.Put(Auth, AuthRevisionKey, u64(1)); err != nil {
			return fmt.Errorf("schema init: %w", err)
		}
	}
	return nil
}

// DefaultIgnores reports the meta keys etcd leaves out of Maintenance.Hash.
func DefaultIgnores(bucket, key []byte) bool {
	if string(bucket) != string(Meta) {
		return false
	}
	k := string(key)
	return k == string(MetaTermKey) || k == string(MetaConsistentIndexKey) || k == string(MetaStorageVersionKey)
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// ReadConsistentIndex returns meta/consistent_index and meta/term (0 when
// absent).
func ReadConsistentIndex(r Reader) (index, term uint64, err error) {
	if v, ok := r.Get(Meta, MetaConsistentIndexKey); ok {
		if len(v) != 8 {
			return 0, 0, fmt.Errorf("consistent_index of %d bytes: %w", len(v), ErrCorrupt)
		}
		index = binary.BigEndian.Uint64(v)
	}
	if v, ok := r.Get(Meta, MetaTermKey); ok {
		if len(v) != 8 {
			return 0, 0, fmt.Errorf("term of %d bytes: %w", len(v), ErrCorrupt)
		}
		term = binary.BigEndian.Uint64(v)
	}
	return index, term, nil
}

// WriteConsistentIndex writes meta/consistent_index and, when term > 0,
// meta/term, as etcd does. index 0 writes nothing.
func WriteConsistentIndex(tx *backend.WriteTx, index, term uint64) error {
	if index == 0 {
		return nil
	}
	if err := tx.Put(Meta, MetaConsistentIndexKey, u64(index)); err != nil {
		return err
	}
	if term > 0 {
		return tx.Put(Meta, MetaTermKey, u64(term))
	}
	return nil
}

// WriteConfState stores cs as JSON in meta/confState.
func WriteConfState(tx *backend.WriteTx, cs *raftpb.ConfState) error {
	b, err := json.Marshal(cs)
	if err != nil {
		return fmt.Errorf("marshal conf state: %w", err)
	}
	return tx.Put(Meta, MetaConfStateKey, b)
}

// ReadConfState returns meta/confState, or nil when absent.
func ReadConfState(r Reader) (*raftpb.ConfState, error) {
	v, ok := r.Get(Meta, MetaConfStateKey)
	if !ok {
		return nil, nil
	}
	var cs raftpb.ConfState
	if err := json.Unmarshal(v, &cs); err != nil {
		return nil, fmt.Errorf("conf state %q: %w: %v", v, ErrCorrupt, err)
	}
	return &cs, nil
}

// WriteStorageVersion sets meta/storageVersion.
func WriteStorageVersion(tx *backend.WriteTx, v string) error {
	return tx.Put(Meta, MetaStorageVersionKey, []byte(v))
}

// ReadStorageVersion returns meta/storageVersion, "" when absent.
func ReadStorageVersion(r Reader) string {
	v, _ := r.Get(Meta, MetaStorageVersionKey)
	return string(v)
}

// WriteClusterVersion sets cluster/clusterVersion.
func WriteClusterVersion(tx *backend.WriteTx, v string) error {
	return tx.Put(Cluster, ClusterVersionKey, []byte(v))
}

// ReadClusterVersion returns cluster/clusterVersion, "" when absent.
func ReadClusterVersion(r Reader) string {
	v, _ := r.Get(Cluster, ClusterVersionKey)
	return string(v)
}

// MemberKey is the bucket key of member id: unpadded lowercase hex.
func MemberKey(id uint64) []byte { return []byte(strconv.FormatUint(id, 16)) }

// PutMember stores value (etcd: the member JSON) under members/<hex id>.
func PutMember(tx *backend.WriteTx, id uint64, value []byte) error {
	return tx.Put(Members, MemberKey(id), value)
}

// RemoveMember deletes members/<hex id> and records members_removed/<hex id>
// = "removed", as etcd does.
func RemoveMember(tx *backend.WriteTx, id uint64) error {
	k := MemberKey(id)
	if err := tx.Delete(Members, k); err != nil {
		return err
	}
	return tx.Put(MembersRemoved, k, []byte("removed"))
}

// ReadMembers returns the members bucket (id → value copy) and the set of
// removed ids.
func ReadMembers(r Reader) (members map[uint64][]byte, removed map[uint64]bool, err error) {
	members, removed = map[uint64][]byte{}, map[uint64]bool{}
	r.Range(Members, nil, nil, 0, func(k, v []byte) bool {
		id, perr := strconv.ParseUint(string(k), 16, 64)
		if perr != nil {
			err = fmt.Errorf("member key %q: %w", k, ErrCorrupt)
			return false
		}
		members[id] = append([]byte(nil), v...)
		return true
	})
	if err != nil {
		return nil, nil, err
	}
	r.Range(MembersRemoved, nil, nil, 0, func(k, _ []byte) bool {
		id, perr := strconv.ParseUint(string(k), 16, 64)
		if perr != nil {
			err = fmt.Errorf("removed member key %q: %w", k, ErrCorrupt)
			return false
		}
		removed[id] = true
		return true
	})
	if err != nil {
		return nil, nil, err
	}
	return members, removed, nil
}
