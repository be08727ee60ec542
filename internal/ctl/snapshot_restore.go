package ctl

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/schema"
	"github.com/cairnkv/cairn/internal/snap"
	"github.com/cairnkv/cairn/internal/wal"
)

// defaultMmapSize is etcd's initial bbolt mmap size on 64-bit Linux.
const defaultMmapSize = 10 * 1024 * 1024 * 1024

// restoreOptions are etcdutl 3.6.16's `snapshot restore` flags.
type restoreOptions struct {
	dataDir, walDir, name        string
	initialCluster, token, peers string
	skipHashCheck, markCompacted bool
	bumpRevision, mmapSize       uint64
}

func (a *app) newSnapshotRestoreCommand() *cobra.Command {
	var o restoreOptions
	cmd := &cobra.Command{
		Use:   "restore <filename> --data-dir {output dir} [options]",
		Short: "Restores an etcd member snapshot to an etcd directory",
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", "", "Path to the output data directory")
	f.StringVar(&o.walDir, "wal-dir", "", "Path to the WAL directory (use --data-dir if none given)")
	f.StringVar(&o.initialCluster, "initial-cluster", "default=http://localhost:2380", "Initial cluster configuration for restore bootstrap")
	f.StringVar(&o.token, "initial-cluster-token", "etcd-cluster", "Initial cluster token for the etcd cluster during restore bootstrap")
	f.StringVar(&o.peers, "initial-advertise-peer-urls", "http://localhost:2380", "List of this member's peer URLs to advertise to the rest of the cluster")
	f.StringVar(&o.name, "name", "default", "Human-readable name for this member")
	f.BoolVar(&o.skipHashCheck, "skip-hash-check", false, "Ignore snapshot integrity hash value (required if copied from data directory)")
	f.Uint64Var(&o.mmapSize, "initial-memory-map-size", defaultMmapSize, "Initial memory map size of the database in bytes. It uses the default value if not defined or defined to 0")
	f.Uint64Var(&o.bumpRevision, "bump-revision", 0, "How much to increase the latest revision after restore")
	f.BoolVar(&o.markCompacted, "mark-compacted", false, "Mark the latest revision after restore as the point of scheduled compaction (required if --bump-revision > 0, disallowed otherwise)")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return exitf(ExitBadArgs, "snapshot restore requires exactly one argument")
		}
		if (o.bumpRevision != 0) != o.markCompacted {
			return exitf(ExitBadArgs, "--mark-compacted required if --revision-bump > 0")
		}
		if o.mmapSize == 0 {
			o.mmapSize = defaultMmapSize
		}
		if err := a.snapshotRestore(args[0], o); err != nil {
			return exitWith(ExitError, err)
		}
		return nil
	})
	return cmd
}

// utlLog writes one etcdutl console log line (zap console encoding, info
// level) naming the etcd source position etcdutl logs it from.
func (a *app) utlLog(logger, file string, line int, msg string, fields ...zap.Field) {
	a.utlLogAt(zapcore.InfoLevel, logger, file, line, msg, fields...)
}

func (a *app) utlLogAt(level zapcore.Level, logger, file string, line int, msg string, fields ...zap.Field) {
	ec := logutil.DefaultZapLoggerConfig.EncoderConfig
	ec.EncodeTime = zapcore.RFC3339TimeEncoder // etcdutl logs whole seconds
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(ec), zapcore.AddSync(a.stderr), zapcore.DebugLevel)
	_ = core.Write(zapcore.Entry{
		Level: level, Time: time.Now(), LoggerName: logger, Message: msg,
		Caller: zapcore.NewEntryCaller(0, file, line, true),
	}, fields)
}

// Source positions of etcdutl 3.6.16's restore log lines.
const (
	restoreLogFile        = "snapshot/v3_snapshot.go"
	restoreLogRestoring   = 305
	restoreLogRestored    = 333
	restoreLogBumping     = 396
	restoreLogCompacted   = 413
	restoreLogTrimFile    = "schema/membership.go"
	restoreLogTrim        = 138
	restoreLogAddedFile   = "membership/cluster.go"
	restoreLogAdded       = 424
	restoreLogResolveFile = "netutil/netutil.go"
	restoreLogResolved    = 113
)

// openRestoreBackend opens the restored db as etcd's backend does (one
// "Opening db file" pair of bbolt log lines per open).
func (a *app) openRestoreBackend(path string, mmap uint64) (*backend.Backend, error) {
	a.utlLog("bbolt", "backend/backend.go", 203, fmt.Sprintf("Opening db file (%s) with mode -rw------- and with options: "+
		"{Timeout: 0s, NoGrowSync: false, NoFreelistSync: true, PreLoadFreelist: false, FreelistType: , ReadOnly: false, "+
		"MmapFlags: 8000, InitialMmapSize: %d, PageSize: 0, NoSync: false, OpenFile: 0x0, Mlock: false, Logger: %p}", path, mmap, a))
	cfg := backend.DefaultConfig(path)
	cfg.MmapSize = int64(mmap)
	b, err := backend.Open(cfg)
	if err != nil {
		// etcd's backend panics when bbolt refuses the file (exit 2).
		cause := errors.Unwrap(err)
		if cause == nil {
			cause = err
		}
		a.utlLogAt(zapcore.ErrorLevel, "bbolt", "bbolt@v1.4.3/db.go", 322, fmt.Sprintf("Opening bbolt db (%s) failed: %v", path, cause))
		a.utlLogAt(zapcore.PanicLevel, "", "backend/backend.go", 205, "failed to open database",
			zap.String("path", path), zap.Error(cause))
		panic("failed to open database")
	}
	a.utlLog("bbolt", "bbolt@v1.4.3/db.go", 322, fmt.Sprintf("Opening bbolt db (%s) successfully", path))
	return b, nil
}

// snapshotRestore is etcdutl's Restore: checks, then the db (copied,
// verified, membership trimmed, revision bumped), then a new WAL and .snap
// holding only the new membership, then the consistent index.
func (a *app) snapshotRestore(file string, o restoreOptions) error {
	peerURLs, err := types.NewURLs(strings.Split(o.peers, ","))
	if err != nil {
		return err
	}
	ic, err := types.NewURLsMap(o.initialCluster)
	if err != nil {
		return err
	}
	if err := a.verifyRestoreBootstrap(o.name, peerURLs, ic); err != nil {
		return err
	}
	var members []*membership.Member
	for name, urls := range ic {
		members = append(members, membership.NewMember(name, urls.StringSlice(), o.token, nil))
	}
	slices.SortFunc(members, func(x, y *membership.Member) int { return cmp.Compare(x.ID, y.ID) })
	ids := make([]uint64, len(members))
	var local *membership.Member
	for i, m := range members {
		ids[i] = m.ID
		if m.Name == o.name {
			local = m
		}
	}
	clusterID := membership.ComputeClusterID(ids)

	dataDir := o.dataDir
	if dataDir == "" {
		dataDir = o.name + ".etcd"
	}
	if fileutil.Exist(dataDir) && !fileutil.DirEmpty(dataDir) {
		return fmt.Errorf("data-dir %q not empty or could not be read", dataDir)
	}
	walDir := o.walDir
	if walDir == "" {
		walDir = filepath.Join(dataDir, "member", "wal")
	} else if fileutil.Exist(walDir) {
		return fmt.Errorf("wal-dir %q exists", walDir)
	}
	snapDir := filepath.Join(dataDir, "member", "snap")
	dbPath := filepath.Join(snapDir, "db")
	where := []zap.Field{zap.String("path", file), zap.String("wal-dir", walDir), zap.String("data-dir", dataDir),
		zap.String("snap-dir", snapDir), zap.Uint64("initial-memory-map-size", o.mmapSize)}
	a.utlLog("", restoreLogFile, restoreLogRestoring, "restoring snapshot", where...)

	if err := copyAndVerifyDB(file, snapDir, dbPath, o.skipHashCheck); err != nil {
		return err
	}
	if err := a.restoreTrimMembership(dbPath, o.mmapSize); err != nil {
		return err
	}
	if o.bumpRevision > 0 {
		if err := a.restoreBumpRevision(dbPath, o.mmapSize, o.bumpRevision); err != nil {
			return err
		}
	}
	if local != nil {
		if err := a.restoreWALAndSnap(dbPath, snapDir, walDir, o.mmapSize, members, local, clusterID); err != nil {
			return err
		}
	}
	a.utlLog("", restoreLogFile, restoreLogRestored, "restored snapshot", where...)
	return nil
}

// verifyRestoreBootstrap is etcd's ServerConfig.VerifyBootstrap for a new
// cluster without discovery: the local name must be in the initial
// cluster, its URLs must match the advertised ones (host names resolved,
// localhost kept), and no URL may appear twice.
func (a *app) verifyRestoreBootstrap(name string, peers types.URLs, ic types.URLsMap) error {
	urls, ok := ic[name]
	if !ok {
		return fmt.Errorf("couldn't find local name %q in the initial cluster configuration", name)
	}
	if urls.String() != peers.String() {
		if err := a.resolvedURLsEqual(urls, peers); err != nil {
			umap := types.URLsMap{name: urls}
			return fmt.Errorf("--initial-cluster has %s but missing from --initial-advertise-peer-urls=%s (%v)", umap.String(), peers.String(), err)
		}
	}
	seen := map[string]bool{}
	for _, us := range ic {
		for _, u := range us {
			if seen[u.String()] {
				return fmt.Errorf("initial cluster %s has duplicate url", ic.String())
			}
			seen[u.String()] = true
		}
	}
	if ic.String() == "" {
		return errors.New("initial cluster unset and no discovery URL found")
	}
	return nil
}

// resolvedURLsEqual is etcd's netutil.URLStringsEqual after a plain string
// comparison failed: lengths, then the URLs with their hosts resolved.
func (a *app) resolvedURLsEqual(want, got types.URLs) error {
	if len(want) != len(got) {
		return fmt.Errorf("len(%q) != len(%q)", got.StringSlice(), want.StringSlice())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resolve := func(us types.URLs) ([]string, error) {
		out := make([]string, len(us))
		for i, u := range us {
			r := url.URL(u)
			host, _, err := net.SplitHostPort(u.Host)
			if err != nil || u.Scheme == "unix" || u.Scheme == "unixs" || host == "localhost" {
				out[i] = r.String()
				continue
			}
			addrs, err := net.DefaultResolver.LookupHost(ctx, host)
			if err != nil || len(addrs) == 0 {
				return nil, fmt.Errorf("failed to resolve %q (%v)", u.Host, err)
			}
			tcp, err := net.ResolveTCPAddr("tcp", u.Host)
			if err != nil {
				return nil, err
			}
			a.utlLog("", restoreLogResolveFile, restoreLogResolved, "resolved URL Host",
				zap.String("url", u.String()), zap.String("host", u.Host), zap.String("resolved-addr", tcp.String()))
			r.Host = tcp.String()
			out[i] = r.String()
		}
		slices.Sort(out)
		return out, nil
	}
	g, err := resolve(got)
	if err != nil {
		return err
	}
	w, err := resolve(want)
	if err != nil {
		return err
	}
	if !slices.Equal(g, w) {
		return fmt.Errorf("resolved urls: %q != %q", strings.Join(g, ","), strings.Join(w, ","))
	}
	return nil
}

// copyAndVerifyDB copies the snapshot to dbPath, strips a trailing SHA-256
// (present when size % 512 == 32) and, unless skip, checks it.
func copyAndVerifyDB(src, snapDir, dbPath string, skip bool) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	sum := make([]byte, sha256.Size)
	if _, err := in.Seek(-sha256.Size, io.SeekEnd); err != nil {
		return err
	}
	if _, err := io.ReadFull(in, sum); err != nil {
		return err
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := os.MkdirAll(snapDir, 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dbPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	n, err := io.Copy(out, in)
	if err != nil {
		return err
	}
	hasHash := n%512 == sha256.Size
	if hasHash {
		if err := out.Truncate(n - sha256.Size); err != nil {
			return err
		}
	}
	switch {
	case !hasHash && !skip:
		return errors.New("snapshot missing hash but --skip-hash-check=false")
	case hasHash && !skip:
		if _, err := out.Seek(0, io.SeekStart); err != nil {
			return err
		}
		h := sha256.New()
		if _, err := io.Copy(h, out); err != nil {
			return err
		}
		if got := h.Sum(nil); !bytes.Equal(sum, got) {
			return fmt.Errorf("expected sha256 %v, got %v", sum, got)
		}
	}
	if err := out.Sync(); err != nil {
		return err
	}
	return out.Close()
}

// withRestoreBackend opens the db, runs fn in one write transaction and
// commits.
func (a *app) withRestoreBackend(path string, mmap uint64, fn func(tx *backend.WriteTx) error) (err error) {
	b, err := a.openRestoreBackend(path, mmap)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := b.Close(); err == nil {
			err = cerr
		}
	}()
	tx := b.Lock()
	ferr := fn(tx)
	if err := tx.Unlock(); err != nil {
		return err
	}
	if ferr != nil {
		return ferr
	}
	return b.ForceCommit()
}

// restoreTrimMembership empties the members and members_removed buckets,
// as etcd's TrimMembershipFromBackend (the cluster bucket is kept).
func (a *app) restoreTrimMembership(path string, mmap uint64) error {
	return a.withRestoreBackend(path, mmap, func(tx *backend.WriteTx) error {
		a.utlLog("", restoreLogTrimFile, restoreLogTrim, "Trimming membership information from the backend...")
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
		return nil
	})
}

// restoreBumpRevision adds bump to the latest main revision, writes an
// empty marker key at it (sub revision 0) so the store starts from there,
// and schedules a compaction at it (--mark-compacted).
func (a *app) restoreBumpRevision(path string, mmap, bump uint64) error {
	return a.withRestoreBackend(path, mmap, func(tx *backend.WriteTx) error {
		var latest int64
		tx.Range(schema.Key, nil, nil, 0, func(k, _ []byte) bool {
			if len(k) >= 8 {
				latest = int64(binary.BigEndian.Uint64(k))
			}
			return true
		})
		next := latest + int64(bump)
		a.utlLog("", restoreLogFile, restoreLogBumping, "bumping latest revision",
			zap.Int64("latest-revision", latest), zap.Uint64("bump-amount", bump), zap.Int64("new-latest-revision", next))
		rev := make([]byte, 17)
		binary.BigEndian.PutUint64(rev, uint64(next))
		rev[8] = '_'
		if err := tx.Put(schema.Key, rev, []byte{}); err != nil {
			return err
		}
		a.utlLog("", restoreLogFile, restoreLogCompacted, "marking revision compacted", zap.Int64("revision", next))
		return tx.Put(schema.Meta, schema.ScheduledCompactKey, bytes.Clone(rev))
	})
}

// restoreWALAndSnap writes the new membership to the db, the WAL (metadata,
// one ConfChangeAddNode per member at term 1, the hard state, a snapshot
// record) and the .snap (the v2 store of the membership), then sets the
// consistent index to the number of members at term 1.
func (a *app) restoreWALAndSnap(dbPath, snapDir, walDir string, mmap uint64, members []*membership.Member,
	local *membership.Member, clusterID uint64) error {
	contexts := make([][]byte, len(members))
	for i, m := range members {
		b, err := membership.MarshalMember(m)
		if err != nil {
			return err
		}
		contexts[i] = b
	}
	err := a.withRestoreBackend(dbPath, mmap, func(tx *backend.WriteTx) error {
		for i, m := range members {
			if err := schema.PutMember(tx, m.ID, contexts[i]); err != nil {
				return err
			}
			a.utlLog("", restoreLogAddedFile, restoreLogAdded, "added member",
				zap.String("cluster-id", membership.FormatID(clusterID)), zap.String("local-member-id", "0"),
				zap.String("added-peer-id", membership.FormatID(m.ID)), zap.Strings("added-peer-peer-urls", m.PeerURLs),
				zap.Bool("added-peer-is-learner", m.IsLearner))
		}
		return nil
	})
	if err != nil {
		return err
	}

	md, err := (&etcdserverpb.Metadata{NodeID: local.ID, ClusterID: clusterID}).Marshal()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(walDir)), 0o700); err != nil {
		return err
	}
	w, err := wal.Create(zap.NewNop(), walDir, md, wal.Options{})
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			_ = w.Close()
		}
	}()
	ents := make([]raftpb.Entry, len(members))
	voters := make([]uint64, len(members))
	for i, m := range members {
		voters[i] = m.ID
		cc := raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: m.ID, Context: contexts[i]}
		d, err := cc.Marshal()
		if err != nil {
			return err
		}
		ents[i] = raftpb.Entry{Type: raftpb.EntryConfChange, Term: 1, Index: uint64(i + 1), Data: d}
	}
	commit, term := uint64(len(ents)), uint64(1)
	if err := w.Save(raftpb.HardState{Term: term, Vote: members[0].ID, Commit: commit}, ents); err != nil {
		return err
	}
	v2, err := restoreV2Store(members)
	if err != nil {
		return err
	}
	cs := raftpb.ConfState{Voters: voters}
	rs := raftpb.Snapshot{Data: v2, Metadata: raftpb.SnapshotMetadata{Index: commit, Term: term, ConfState: cs}}
	if err := snap.New(zap.NewNop(), snapDir).SaveSnap(rs); err != nil {
		return err
	}
	if err := w.SaveSnapshot(wal.Snapshot{Index: commit, Term: term, ConfState: &cs}); err != nil {
		return err
	}
	closed = true
	if err := w.Close(); err != nil {
		return err
	}
	// etcd's updateCIndex: the consistent index and term only; the
	// confState in the db stays the snapshot's (etcdutl does not touch it).
	return a.withRestoreBackend(dbPath, mmap, func(tx *backend.WriteTx) error {
		return schema.WriteConsistentIndex(tx, commit, term)
	})
}
