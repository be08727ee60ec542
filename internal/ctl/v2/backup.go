package ctlv2

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/schema"
	"github.com/cairnkv/cairn/internal/snap"
	"github.com/cairnkv/cairn/internal/v2store"
	"github.com/cairnkv/cairn/internal/wal"
)

// The member a backup names as the only one; `cairn --force-new-cluster`
// (or a plain start) brings it up, and `member update` gives it its real
// peer URL. The same placeholder etcdutl 3.5's backup writes.
const (
	backupMemberName = "etcdctl-v2-backup"
	backupPeerURL    = "http://use-flag--force-new-cluster:2080"
)

func (r *runner) backupCommand() cli.Command {
	return cli.Command{
		Name:      "backup",
		Usage:     "backup an etcd directory",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			cli.StringFlag{Name: "data-dir", Value: "", Usage: "Path to the etcd data dir"},
			cli.StringFlag{Name: "wal-dir", Value: "", Usage: "Path to the etcd wal dir"},
			cli.StringFlag{Name: "backup-dir", Value: "", Usage: "Path to the backup dir"},
			cli.StringFlag{Name: "backup-wal-dir", Value: "", Usage: "Path to the backup wal dir"},
			cli.BoolFlag{Name: "with-v3", Usage: "Backup v3 backend data"},
		},
		Action: func(c *cli.Context) error {
			o := backupOptions{
				dataDir: c.String("data-dir"), walDir: c.String("wal-dir"),
				backupDir: c.String("backup-dir"), backupWALDir: c.String("backup-wal-dir"),
				withV3: c.Bool("with-v3"),
			}
			if err := backup(o); err != nil {
				// etcdctl reports backup failures through log.Fatal.
				log.New(r.env.Stderr, "", log.LstdFlags).Print(err)
				return &exit{ExitBadArgs}
			}
			return nil
		},
	}
}

type backupOptions struct {
	dataDir, walDir, backupDir, backupWALDir string
	withV3                                   bool
}

// backup copies a stopped member's data dir into a new one that starts as
// a one-member cluster of a new identity (cairn --force-new-cluster):
//
//   - a raft snapshot at the backend's consistent index whose only voter and
//     member is a new member ID (the placeholder member above), in a cluster
//     of a new ID;
//   - the backend with the v2 tree (bucket cairn_v2) and, with --with-v3,
//     everything else; without it, a fresh backend holding only the v2 tree,
//     the consistent index and the cluster version;
//   - a WAL with the new IDs, the snapshot record and the source's entries
//     after the consistent index, indexes unchanged, except that conf changes,
//     member attribute updates and (without --with-v3) v3 requests other than
//     v2 writes become empty entries.
//
// The source is opened read-only and refused while a member holds it.
func backup(o backupOptions) error {
	if o.dataDir == "" {
		return errors.New("backup: --data-dir is required")
	}
	if o.backupDir == "" {
		return errors.New("backup: --backup-dir is required")
	}
	srcSnapDir := filepath.Join(o.dataDir, "member", "snap")
	srcWALDir := o.walDir
	if srcWALDir == "" {
		srcWALDir = filepath.Join(o.dataDir, "member", "wal")
	}
	dstSnapDir := filepath.Join(o.backupDir, "member", "snap")
	dstWALDir := o.backupWALDir
	if dstWALDir == "" {
		dstWALDir = filepath.Join(o.backupDir, "member", "wal")
	}
	for _, d := range []string{filepath.Join(dstSnapDir, "db"), dstWALDir} {
		if _, err := os.Stat(d); err == nil {
			return fmt.Errorf("backup: %s exists: the backup dir must not hold a member already", d)
		}
	}

	lg := zap.NewNop()
	srcSnap, err := snap.New(lg, srcSnapDir).Load()
	if err != nil && !errors.Is(err, snap.ErrNoSnapshot) {
		return fmt.Errorf("backup: read snapshot: %w", err)
	}
	var walsnap wal.Snapshot
	version := ""
	if srcSnap != nil {
		walsnap = wal.Snapshot{Index: srcSnap.Metadata.Index, Term: srcSnap.Metadata.Term}
		if _, _, version, err = membership.UnmarshalV2Snapshot(srcSnap.Data); err != nil {
			return fmt.Errorf("backup: %s: %w", srcSnapDir, err)
		}
		if hasEtcdV2Keys(srcSnap.Data) {
			return fmt.Errorf("backup: %s holds etcd's own v2 keys (an etcd 3.4 or older data dir): %w", srcSnapDir, errEtcdV2)
		}
	}
	w, err := wal.OpenForRead(lg, srcWALDir, walsnap)
	if err != nil {
		return fmt.Errorf("backup: open wal: %w", err)
	}
	_, state, ents, err := w.ReadAll()
	_ = w.Close()
	if err != nil {
		return fmt.Errorf("backup: read wal: %w", err)
	}

	src, err := backend.OpenFile(filepath.Join(srcSnapDir, "db"), 5*time.Second)
	if err != nil {
		return fmt.Errorf("backup: open backend (is the member still running?): %w", err)
	}
	defer src.Close()
	var ci, term uint64
	if err := src.View(func(tx backend.FileTx) error {
		ci, term, err = schema.ReadConsistentIndex(tx)
		return err
	}); err != nil {
		return fmt.Errorf("backup: read consistent index: %w", err)
	}
	if ci < walsnap.Index {
		ci, term = walsnap.Index, walsnap.Term
	}
	if term == 0 {
		term = termOf(ci, walsnap, ents)
	}

	var kept []raftpb.Entry
	for _, e := range ents {
		if err := refuseEtcdV2(e); err != nil {
			return fmt.Errorf("backup: wal entry %d: %w", e.Index, err)
		}
		if e.Index <= ci {
			continue
		}
		blank, err := blankEntry(e, o.withV3)
		if err != nil {
			return fmt.Errorf("backup: wal entry %d: %w", e.Index, err)
		}
		if blank {
			e = raftpb.Entry{Term: e.Term, Index: e.Index, Type: raftpb.EntryNormal}
		}
		kept = append(kept, e)
	}
	nodeID, clusterID := randomID(), randomID()
	self := &membership.Member{ID: nodeID, Attributes: membership.Attributes{Name: backupMemberName},
		RaftAttributes: membership.RaftAttributes{PeerURLs: []string{backupPeerURL}}}
	cs := raftpb.ConfState{Voters: []uint64{nodeID}}

	if err := os.MkdirAll(dstSnapDir, 0o700); err != nil {
		return err
	}
	if err := writeBackupDB(src, filepath.Join(srcSnapDir, "db"), filepath.Join(dstSnapDir, "db"), self, ci, term, &cs, o.withV3); err != nil {
		return fmt.Errorf("backup: write backend: %w", err)
	}
	cl := membership.NewCluster(clusterID, nodeID, 0)
	cl.Restore([]*membership.Member{self}, nil, version)
	v2, err := cl.MarshalV2Snapshot()
	if err != nil {
		return err
	}
	rs := raftpb.Snapshot{Data: v2, Metadata: raftpb.SnapshotMetadata{Index: ci, Term: term, ConfState: cs}}
	if err := snap.New(lg, dstSnapDir).SaveSnap(rs); err != nil {
		return fmt.Errorf("backup: write snapshot: %w", err)
	}

	md, err := (&pb.Metadata{NodeID: nodeID, ClusterID: clusterID}).Marshal()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dstWALDir)), 0o700); err != nil {
		return err
	}
	nw, err := wal.Create(lg, dstWALDir, md, wal.Options{})
	if err != nil {
		return fmt.Errorf("backup: create wal: %w", err)
	}
	if err := nw.SaveSnapshot(wal.Snapshot{Index: ci, Term: term, ConfState: &cs}); err != nil {
		_ = nw.Close()
		return err
	}
	hs := raftpb.HardState{Term: max(state.Term, term), Commit: max(state.Commit, ci)}
	if err := nw.Save(hs, kept); err != nil {
		_ = nw.Close()
		return err
	}
	return nw.Close()
}

// errEtcdV2 refuses data dirs whose v2 keys live in etcd's own v2 store
// (etcd 3.4 and older): cairn keeps its v2 tree in the backend, and the
// backup does not translate etcd's yet.
var errEtcdV2 = errors.New("cairnctl backup carries cairn's v2 data, not etcd's v2 store; back it up with etcd 3.4's etcdctl")

// refuseEtcdV2 fails on a WAL entry that writes a key of etcd's own v2
// store (an etcd 3.4 data dir): a bare v2 Request, or one inside an
// InternalRaftRequest, on a path under /1 (user keys; /0 is membership).
func refuseEtcdV2(e raftpb.Entry) error {
	if e.Type != raftpb.EntryNormal || len(e.Data) == 0 {
		return nil
	}
	var path, method string
	var req pb.InternalRaftRequest
	if err := req.Unmarshal(e.Data); err == nil {
		if req.V2 == nil {
			return nil
		}
		path, method = req.V2.Path, req.V2.Method
	} else {
		var v2 pb.Request
		if err := v2.Unmarshal(e.Data); err != nil {
			return fmt.Errorf("neither an etcd v3 nor v2 request: %w", err)
		}
		path, method = v2.Path, v2.Method
	}
	if strings.HasPrefix(path, "/0/") || path == "/0" || method == "SYNC" || method == "QGET" || method == "GET" {
		return nil
	}
	return fmt.Errorf("an etcd v2 store write (%s %s): %w", method, path, errEtcdV2)
}

// hasEtcdV2Keys says whether a .snap's v2 store holds user keys (under
// /1), as etcd 3.4 writes them; cairn's .snap files hold membership only.
func hasEtcdV2Keys(data []byte) bool {
	var st struct {
		Root struct {
			Children map[string]struct {
				Children map[string]json.RawMessage
			}
		}
	}
	if json.Unmarshal(data, &st) != nil {
		return false
	}
	return len(st.Root.Children["1"].Children) > 0
}

// termOf finds the term of entry index.
func termOf(index uint64, s wal.Snapshot, ents []raftpb.Entry) uint64 {
	if index == s.Index {
		return s.Term
	}
	for _, e := range ents {
		if e.Index == index {
			return e.Term
		}
	}
	return s.Term
}

// blankEntry says whether a WAL entry is emptied in the backup: conf
// changes and member attribute updates (they name the old members), and
// without withV3 every v3 request but a v2 write. etcd's own v2 writes
// (data dirs of etcd 3.4 and older) cannot be carried: cairn keeps its v2
// tree in the backend.
func blankEntry(e raftpb.Entry, withV3 bool) (bool, error) {
	if e.Type != raftpb.EntryNormal {
		return true, nil
	}
	if len(e.Data) == 0 {
		return false, nil
	}
	var req pb.InternalRaftRequest
	if err := req.Unmarshal(e.Data); err != nil {
		return true, nil // a bare v2 request on membership (refuseEtcdV2 ran first)
	}
	switch {
	case req.V2 != nil:
		return true, nil // etcd's membership bookkeeping (refuseEtcdV2 ran first)
	case req.ClusterMemberAttrSet != nil:
		return true, nil
	case req.Txn != nil && v2store.FromCarrier(req.Txn) != nil:
		return false, nil
	default:
		return !withV3, nil
	}
}

// writeBackupDB writes the backup's backend: a copy of the source with
// --with-v3, else a fresh one with the v2 tree and the cluster version; in
// both, the membership is the placeholder member alone and the consistent
// index is ci.
func writeBackupDB(src *backend.File, srcPath, path string, self *membership.Member, ci, term uint64, cs *raftpb.ConfState, withV3 bool) error {
	type kv struct{ bucket, k, v []byte }
	var copied []kv
	if withV3 {
		// src holds bbolt's shared lock, so no member writes the file while
		// it is copied byte for byte.
		if err := copyFile(srcPath, path); err != nil {
			return err
		}
	} else {
		if err := src.View(func(tx backend.FileTx) error {
			for _, b := range [][]byte{v2store.Bucket, schema.Cluster} {
				err := tx.ForEach(b, func(k, v []byte) error {
					copied = append(copied, kv{b, bytes.Clone(k), bytes.Clone(v)})
					return nil
				})
				if err != nil && !errors.Is(err, backend.ErrBucketNotFound) {
					return err
				}
			}
			if v, ok := tx.Get(schema.Meta, schema.MetaStorageVersionKey); ok {
				copied = append(copied, kv{schema.Meta, schema.MetaStorageVersionKey, bytes.Clone(v)})
			}
			return nil
		}); err != nil {
			return err
		}
	}
	b, err := backend.Open(backend.DefaultConfig(path))
	if err != nil {
		return err
	}
	tx := b.Lock()
	werr := func() error {
		if err := schema.Init(tx); err != nil {
			return err
		}
		if err := tx.CreateBucket(v2store.Bucket); err != nil {
			return err
		}
		for _, c := range copied {
			if err := tx.Put(c.bucket, c.k, c.v); err != nil {
				return err
			}
		}
		for _, bucket := range [][]byte{schema.Members, schema.MembersRemoved} {
			var keys [][]byte
			tx.Range(bucket, nil, nil, 0, func(k, _ []byte) bool {
				keys = append(keys, bytes.Clone(k))
				return true
			})
			for _, k := range keys {
				if err := tx.Delete(bucket, k); err != nil {
					return err
				}
			}
		}
		m, err := membership.MarshalMember(self)
		if err != nil {
			return err
		}
		if err := schema.PutMember(tx, self.ID, m); err != nil {
			return err
		}
		if err := schema.WriteConfState(tx, cs); err != nil {
			return err
		}
		return schema.WriteConsistentIndex(tx, ci, term)
	}()
	if err := tx.Unlock(); err != nil && werr == nil {
		werr = err
	}
	if werr == nil {
		werr = b.ForceCommit()
	}
	if err := b.Close(); err != nil && werr == nil {
		werr = err
	}
	return werr
}

// randomID is a non-zero random 64-bit ID.
func randomID() uint64 {
	var b [8]byte
	for {
		if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
			panic(err)
		}
		if id := binary.BigEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}

// copyFile copies src to a new file dst and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
