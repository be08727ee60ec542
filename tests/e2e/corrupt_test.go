package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/cairnkv/cairn/tests/framework"
)

// corruptValue rewrites the value of the newest revision in a stopped
// member's backend, leaving everything else as it was: its HashKV then
// differs from the other members' at the same revision.
func corruptValue(t *testing.T, dataDir string) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dataDir, "member", "snap", "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("key"))
		k, v := b.Cursor().Last()
		var kv mvccpb.KeyValue
		if err := kv.Unmarshal(v); err != nil {
			return err
		}
		kv.Value = []byte("flipped by the test")
		nv, err := kv.Marshal()
		if err != nil {
			return err
		}
		return b.Put(append([]byte(nil), k...), nv)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// etcd 3.6's corruption checks find a member whose data differs: with the
// initial check it refuses to start; without it, the leader's periodic
// check raises a CORRUPT alarm against it, after which writes fail with
// "etcdserver: corrupt cluster". Run on cairn and on etcd.
func TestCorruptionChecks(t *testing.T) {
	for _, tg := range clusterTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			c := framework.NewCluster(t, []string{tg.bin}, 3, "--corrupt-check-time", "1s")
			c.Start(60 * time.Second)
			cl := c.Members[0].Client3()
			defer cl.Close()
			for i := 0; i < 20; i++ {
				if _, err := cl.Put(ctxT(t), fmt.Sprintf("k%02d", i), "v"); err != nil {
					t.Fatal(err)
				}
			}
			sameState(t, c)
			bad := c.Members[2]
			st, err := cl.Status(ctxT(t), bad.Client)
			if err != nil {
				t.Fatal(err)
			}
			badID := st.Header.MemberId
			bad.Stop()
			corruptValue(t, bad.DataDir)

			// The initial check refuses the corrupt member.
			bad.Extra = append(bad.Extra, "--feature-gates=InitialCorruptCheck=true")
			bad.Start()
			select {
			case <-bad.Done():
			case <-time.After(30 * time.Second):
				t.Fatalf("the corrupt member started despite the initial check:\n%s", bad.Log())
			}
			if !strings.Contains(bad.Log(), "found data inconsistency with peers") {
				t.Fatalf("the refusal does not say why:\n%s", bad.Log())
			}

			// Without it the member starts; the leader's check raises the
			// alarm against it.
			bad.Extra = bad.Extra[:len(bad.Extra)-1]
			bad.Start()
			bad.WaitReady(60 * time.Second)
			waitUntil(t, "the CORRUPT alarm", func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				resp, err := cl.AlarmList(ctx)
				if err != nil {
					return false
				}
				for _, a := range resp.Alarms {
					if a.Alarm == etcdserverpb.AlarmType_CORRUPT && a.MemberID == badID {
						return true
					}
				}
				return false
			})
			_, err = cl.Put(ctxT(t), "after", "alarm")
			if !errors.Is(err, rpctypes.ErrCorrupt) {
				t.Fatalf("write under CORRUPT: %v, want %v", err, rpctypes.ErrCorrupt)
			}
		})
	}
}
