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
//     the consistent index and the cluster version. An etcd 3.4 data dir's
//     v2 store (.snap and WAL tail) is translated into the tree
//     (backup_etcd34.go);
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

	// An etcd 3.4 (or older) data dir keeps its v2 keys in etcd's v2 store
	// (.snap and WAL): translated into cairn's tree, which replaces the
	// source's (absent) cairn_v2 bucket in the backup.
	var tree *v2store.Store
	etcdKeys := srcSnap != nil && hasEtcdV2Keys(srcSnap.Data)
	for _, e := range ents {
		w, err := etcdV2Write(e)
		if err != nil {
			return fmt.Errorf("backup: wal entry %d: %w", e.Index, err)
		}
		etcdKeys = etcdKeys || w
	}
	if etcdKeys {
		if n, err := bucketRecords(src); err != nil {
			return fmt.Errorf("backup: read v2 bucket: %w", err)
		} else if n > 0 {
			return fmt.Errorf("backup: %s holds both etcd's v2 store and cairn's v2 tree (%d records): %w", o.dataDir, n, errUntranslatable)
		}
		tree = v2store.New()
		if srcSnap != nil {
			if tree, err = etcdV2Tree(srcSnap.Data); err != nil {
				return fmt.Errorf("backup: %s: %w", srcSnapDir, err)
			}
		}
		for _, e := range ents {
			if e.Index > state.Commit {
				break // never committed: etcd's --force-new-cluster drops it too
			}
			if err := applyEtcdV2Entry(tree, e); err != nil {
				return fmt.Errorf("backup: wal entry %d: %w", e.Index, err)
			}
		}
	}

	var kept []raftpb.Entry
	for _, e := range ents {
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
	if err := writeBackupDB(src, filepath.Join(srcSnapDir, "db"), filepath.Join(dstSnapDir, "db"), self, ci, term, &cs, o.withV3, tree); err != nil {
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

// etcdV2Write says whether a WAL entry is a write to etcd's own v2 store
// outside membership (/0): the WAL of an etcd 3.4 or older member.
func etcdV2Write(e raftpb.Entry) (bool, error) {
	if e.Type != raftpb.EntryNormal || len(e.Data) == 0 {
		return false, nil
	}
	_, r, err := etcdEntryRequest(e.Data)
	if err != nil || r == nil {
		return false, err
	}
	switch r.Method {
	case "PUT", "POST", "DELETE":
		return r.Path != etcdV2Membership && !strings.HasPrefix(r.Path, etcdV2Membership+"/"), nil
	}
	return false, nil
}

// bucketRecords counts the records of the source's cairn_v2 bucket.
func bucketRecords(src *backend.File) (int, error) {
	n := 0
	err := src.View(func(tx backend.FileTx) error {
		err := tx.ForEach(v2store.Bucket, func(_, _ []byte) error { n++; return nil })
		if errors.Is(err, backend.ErrBucketNotFound) {
			return nil
		}
		return err
	})
	return n, err
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
// without withV3 every v3 request but a v2 write. etcd's own v2 requests
// (data dirs of etcd 3.4 and older) are blanked: the translated tree holds
// their effect.
func blankEntry(e raftpb.Entry, withV3 bool) (bool, error) {
	if e.Type != raftpb.EntryNormal {
		return true, nil
	}
	if len(e.Data) == 0 {
		return false, nil
	}
	var req pb.InternalRaftRequest
	if err := req.Unmarshal(e.Data); err != nil {
		return true, nil // a bare etcd v2 request (translated into the tree)
	}
	switch {
	case req.V2 != nil:
		return true, nil // an etcd v2 request (translated into the tree)
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
func writeBackupDB(src *backend.File, srcPath, path string, self *membership.Member, ci, term uint64, cs *raftpb.ConfState, withV3 bool, tree *v2store.Store) error {
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
		if tree != nil {
			// The translated tree is the whole bucket.
			if err := tree.Records(func(k, v []byte) error { return tx.Put(v2store.Bucket, k, v) }); err != nil {
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
