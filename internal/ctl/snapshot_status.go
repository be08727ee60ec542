package ctl

import (
	"fmt"
	"hash/crc32"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairnkv/cairn/internal/backend"
	"github.com/cairnkv/cairn/internal/ctl/printer"
	"github.com/cairnkv/cairn/internal/mvcc"
	"github.com/cairnkv/cairn/internal/schema"
)

// snapshotStatus is etcdutl's `snapshot status <file>`: it reads a bbolt
// file (a saved snapshot or a member's db) without changing it.
func (a *app) snapshotStatus(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return exitf(ExitBadArgs, "snapshot status requires exactly one argument")
	}
	if err := a.initDisplay(); err != nil {
		return err
	}
	ds, err := dbStatus(args[0])
	if err != nil {
		return exitWith(ExitError, err)
	}
	return a.display.DBStatus(ds)
}

// dbStatus opens path read-only, checks bbolt's consistency, and computes
// etcdutl's status: a CRC-32C over every bucket name, key and value in
// bbolt order; the main revision of the last key of bucket `key`; the
// number of user keys whose last revision is not a tombstone; bbolt's size;
// meta/storageVersion.
func dbStatus(path string) (printer.DBStatus, error) {
	var ds printer.DBStatus
	if _, err := os.Stat(path); err != nil {
		return ds, err
	}
	f, err := backend.OpenFile(path, 0)
	if err != nil {
		return ds, err
	}
	defer f.Close()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	live := map[string]struct{}{}
	err = f.View(func(tx backend.FileTx) error {
		var problems []string
		for _, err := range tx.Check() {
			problems = append(problems, err.Error())
		}
		if len(problems) > 0 {
			return fmt.Errorf("snapshot file integrity check failed. %d errors found.\n%s", len(problems), strings.Join(problems, "\n"))
		}
		ds.TotalSize = tx.Size()
		if v, ok := tx.Get(schema.Meta, schema.MetaStorageVersionKey); ok {
			ds.Version = storageVersion(v)
		}
		for _, name := range tx.Buckets() {
			h.Write(name)
			isKey := string(name) == string(schema.Key)
			err := tx.ForEach(name, func(k, v []byte) error {
				h.Write(k)
				h.Write(v)
				if !isKey {
					return nil
				}
				rev, tomb, err := mvcc.ParseRevBytes(k)
				if err != nil {
					return fmt.Errorf("cannot parse revision key: %q err: %w", k, err)
				}
				ds.Revision = rev.Main
				var kv mvccpb.KeyValue
				if err := kv.Unmarshal(v); err != nil {
					return fmt.Errorf("cannot unmarshal value, key: %q value: %q err: %w", k, v, err)
				}
				if tomb {
					delete(live, string(kv.Key))
				} else {
					live[string(kv.Key)] = struct{}{}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("error during bucket key iteration, name: %q err: %w", string(name), err)
			}
		}
		return nil
	})
	if err != nil {
		return ds, err
	}
	ds.TotalKey = len(live)
	ds.Hash = h.Sum32()
	return ds, nil
}

// storageVersion is etcd's reading of meta/storageVersion: a semantic
// version "major.minor.patch" reported as is, anything else as "".
func storageVersion(v []byte) string {
	parts := strings.Split(string(v), ".")
	if len(parts) != 3 {
		return ""
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return ""
		}
	}
	return string(v)
}
