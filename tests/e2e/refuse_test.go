package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// dirDigest maps every file under dir to its mode and SHA-256, so a test
// can check that a refused start changed nothing, byte for byte.
func dirDigest(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel] = info.Mode().String()
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[rel] = info.Mode().String() + " " + hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// refusedOn starts cairn on dataDir (with the flags the etcd member m used)
// and checks it exits non-zero, logging every one of want, and leaves the
// data dir exactly as it found it.
func refusedOn(t *testing.T, m *framework.Member, want ...string) {
	t.Helper()
	before := dirDigest(t, m.DataDir)
	c := framework.NewMember(t, framework.Cairn(t), m.Name)
	c.DataDir, c.Client, c.Peer, c.Extra = m.DataDir, m.Client, m.Peer, m.Extra
	c.Start()
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("cairn started on a data dir it must refuse:\n%s", c.Log())
	}
	if c.ExitErr() == nil {
		t.Fatalf("cairn exited 0 on a data dir it must refuse:\n%s", c.Log())
	}
	log := c.Log()
	for _, w := range want {
		if !strings.Contains(log, w) {
			t.Errorf("the refusal does not say %q:\n%s", w, log)
		}
	}
	if after := dirDigest(t, m.DataDir); !reflect.DeepEqual(before, after) {
		t.Errorf("a refused start changed the data dir:\nbefore %v\nafter  %v", before, after)
	}
}

// An etcd data dir with auth enabled is refused: serving it without
// enforcing auth would give every key to clients without credentials.
func TestAuthEnabledEtcdDataDirRefused(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	e := framework.NewMember(t, ref.Etcd, "n1")
	e.StartAndWait(30 * time.Second)
	c := e.Client3()
	ctx := ctxT(t)
	if _, err := c.Put(ctx, "secret", "s3cr3t"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { _, err := c.UserAdd(ctx, "root", "pw"); return err },
		func() error { _, err := c.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := c.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	e.Stop()
	<-e.Done()
	refusedOn(t, e, "auth is enabled", "etcdctl auth disable")
}

// A request cairn cannot apply yet, still only in the WAL (etcd was killed
// before its backend committed it), is not skipped: cairn refuses, naming
// the entry's kind, its index and its WAL file, and changes nothing. (A
// downgrade request: etcd commits its backend at once after auth requests.)
func TestUnsupportedEntryInWALTailRefused(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	// A backend batch interval longer than the test keeps the request out
	// of the backend until etcd is killed.
	e := framework.NewMember(t, ref.Etcd, "n1", "--backend-batch-interval", "10m", "--backend-batch-limit", "1000000")
	e.StartAndWait(30 * time.Second)
	c := e.Client3()
	ctx := ctxT(t)
	if _, err := c.Put(ctx, "before", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Downgrade(ctx, clientv3.DowngradeEnable, "3.5"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	e.Kill()
	<-e.Done()
	refusedOn(t, e, "holds a downgrade info set request, which cairn cannot apply yet", ".wal)", "consistent index is")
}

// A backend written by an etcd newer than 3.6 is refused with its version.
func TestNewerStorageVersionRefused(t *testing.T) {
	m := framework.NewMember(t, framework.Cairn(t), "n1")
	m.StartAndWait(30 * time.Second)
	m.Stop()
	<-m.Done()
	db, err := bolt.Open(filepath.Join(m.DataDir, "member", "snap", "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("storageVersion"), []byte("3.7.0"))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	refusedOn(t, m, "has storage version 3.7.0", "reads storage versions up to 3.6")
}
