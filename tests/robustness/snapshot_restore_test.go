package robustness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// FaultSnapshotRestore takes a snapshot (Maintenance.Snapshot, what
// `cairnctl snapshot save` sends) from a member under traffic, restores it
// with `snapshot restore` into new data dirs of a new cluster of 1 or 3
// members (by seed), starts it, and reads its key space; validation checks
// it against the history at the snapshot's revision.
const FaultSnapshotRestore = "snapshot-restore"

// anomRestore is a restored cluster that differs from the history.
const anomRestore = "snapshot restore: differs from the history"

// restoreWindow is how many revisions below the snapshot's the restored
// members are compared at (each revision's whole key space).
const restoreWindow = 30

// restoreCheck is what a snapshot-restore fault saw, for validation.
type restoreCheck struct {
	Source        string
	Before, After int64 // the source's revision before the snapshot was asked and after it was read
	Call, Return  time.Duration
	Rev           int64 // the snapshot's revision (`snapshot status`)
	Members       []restoredMember
	Err           string // the restore or the reads failed: a harness error
}

// restoredMember is one restored member's view.
type restoredMember struct {
	Name    string
	Tool    string                       // the restore command (cairnctl or etcdutl)
	Current int64                        // its revision once serving (≥ Rev: leases it expires come after)
	Low     int64                        // the lowest revision it can still read (its compaction)
	States  map[int64]map[string]kvState // the key space at revisions Rev-restoreWindow..Rev (from Low)
}

// snapshotRestore is the fault.
func (in *injector) snapshotRestore() (bool, error) {
	c := in.c
	src := c.members[in.rnd.IntN(len(c.members))]
	n := 1
	if in.rnd.IntN(2) == 0 {
		n = 3
	}
	rc := &restoreCheck{Source: src.Name}
	c.restores = append(c.restores, rc)
	file := filepath.Join(c.dir, "snapshot.db")
	cl := c.client(src)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := cl.Status(ctx, src.Client)
	if err != nil {
		return false, fmt.Errorf("status of %s: %w", src.Name, err)
	}
	rc.Before = st.Header.Revision
	in.event("snapshot of %s (revision %d)", src.Name, rc.Before)
	rc.Call = in.rec.now()
	if err := saveSnapshot(ctx, cl, file); err != nil {
		return false, fmt.Errorf("snapshot of %s: %w", src.Name, err)
	}
	rc.Return = in.rec.now()
	if st, err = cl.Status(ctx, src.Client); err != nil {
		return false, fmt.Errorf("status of %s: %w", src.Name, err)
	}
	rc.After = st.Header.Revision
	ctls := restoreTools(c)
	if rc.Rev, err = snapshotRevision(ctls[0], file); err != nil {
		return false, err
	}
	in.event("snapshot saved: revision %d (source at %d after); restore it into %d new members", rc.Rev, rc.After, n)

	// The new cluster: members r1..rn on 127.0.0.11.., their binaries and
	// restore tools alternating as the target's do.
	var ms []*framework.Member
	var pairs []string
	for i := range n {
		host := fmt.Sprintf("127.0.0.%d", 11+i)
		name := fmt.Sprintf("r%d", i+1)
		m := framework.NewMember(c.t, c.bins[i%len(c.bins)], name, c.flags...)
		ports := distinctPorts(c.t, host, 2)
		m.Host = host
		m.Client = fmt.Sprintf("http://%s:%d", host, ports[0])
		m.Peer = fmt.Sprintf("http://%s:%d", host, ports[1])
		m.DataDir = filepath.Join(c.dir, name+".data")
		m.LogPath = filepath.Join(c.dir, name+".log")
		m.Extra = append([]string{"--initial-cluster-token", "restored"}, m.Extra...)
		ms = append(ms, m)
		pairs = append(pairs, name+"="+m.Peer)
	}
	for i, m := range ms {
		m.InitialCluster = strings.Join(pairs, ",")
		tool := ctls[i%len(ctls)]
		args := []string{"snapshot", "restore", file, "--name", m.Name, "--data-dir", m.DataDir,
			"--initial-cluster", m.InitialCluster, "--initial-cluster-token", "restored",
			"--initial-advertise-peer-urls", m.Peer}
		if out, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
			rc.Err = fmt.Sprintf("%s %s: %v: %s", filepath.Base(tool), strings.Join(args, " "), err, out)
			return false, errors.New(rc.Err)
		}
		rc.Members = append(rc.Members, restoredMember{Name: m.Name, Tool: filepath.Base(tool)})
		c.spares = append(c.spares, m) // their logs are checked
	}
	for _, m := range ms {
		m.Start()
	}
	defer func() {
		for _, m := range ms {
			m.Kill()
		}
	}()
	for i, m := range ms {
		if err := c.waitReady(m, 60*time.Second); err != nil {
			rc.Err = err.Error()
			return false, err
		}
		if err := readRestored(m, rc.Rev, &rc.Members[i]); err != nil {
			rc.Err = err.Error()
			return false, err
		}
	}
	in.event("restored cluster of %d read at revision %d (current %d)", n, rc.Rev, rc.Members[0].Current)
	return true, nil
}

// restoreTools are the `snapshot restore` commands of the cluster's
// binaries (cairnctl for cairn, etcdutl for etcd), in the same order.
func restoreTools(c *cluster) []string {
	var out []string
	for _, b := range c.bins {
		if filepath.Base(b) == "cairn" {
			out = append(out, framework.Cairnctl(c.t))
		} else {
			out = append(out, refs.EtcdRelease(c.t, refs.Default).Etcdutl)
		}
	}
	return out
}

// saveSnapshot streams Maintenance.Snapshot into file.
func saveSnapshot(ctx context.Context, cl *clientv3.Client, file string) error {
	rc, err := cl.Snapshot(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// snapshotRevision is the revision `snapshot status -w json` reports.
func snapshotRevision(tool, file string) (int64, error) {
	out, err := exec.Command(tool, "snapshot", "status", file, "-w", "json").Output()
	if err != nil {
		return 0, fmt.Errorf("%s snapshot status: %w", filepath.Base(tool), err)
	}
	var st struct {
		Revision int64 `json:"revision"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return 0, fmt.Errorf("snapshot status %q: %w", out, err)
	}
	return st.Revision, nil
}

// readRestored reads a restored member: its current revision, the lowest
// revision it can read, and its key space at the revisions of the window.
func readRestored(m *framework.Member, rev int64, rm *restoredMember) error {
	cl, err := clientv3.New(clientv3.Config{Endpoints: []string{m.Client}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cl.Get(ctx, "health", clientv3.WithSerializable())
	if err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	rm.Current = resp.Header.Revision
	// The lowest readable revision: reads below a compaction fail.
	var probeErr error
	rm.Low = int64(sort.Search(int(rev), func(i int) bool {
		_, err := cl.Get(ctx, "health", clientv3.WithRev(int64(i+1)), clientv3.WithSerializable())
		if err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
			probeErr = err
		}
		return err == nil
	})) + 1
	if probeErr != nil {
		return fmt.Errorf("%s: %w", m.Name, probeErr)
	}
	from := max(rm.Low, rev-restoreWindow, 1)
	states, err := readStates(ctx, cl, from, rev)
	if err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	rm.States = map[int64]map[string]kvState{}
	for i, st := range states {
		rm.States[from+int64(i)] = st
	}
	return nil
}

// checkRestores compares each restored cluster with the history: the
// snapshot's revision lies between the source's revisions before and after
// it was taken; every restored member serves, at every revision of the
// window up to the snapshot's, exactly the key space the history has there
// (so every acknowledged write up to it, and nothing after it); it is at
// the snapshot's revision or later; and it can read exactly from the
// source's compaction: no lower than a compaction acknowledged before the
// snapshot was asked, no higher than one sent before it was read.
func checkRestores(rcs []*restoreCheck, h *storeHistory, compactions []compaction) []anomaly {
	var anoms []anomaly
	add := func(rc *restoreCheck, format string, args ...any) {
		anoms = append(anoms, anomaly{anomRestore, fmt.Sprintf("snapshot of %s at revision %d: ", rc.Source, rc.Rev) + fmt.Sprintf(format, args...)})
	}
	for _, rc := range rcs {
		if rc.Err != "" || rc.Rev == 0 {
			continue // a harness error, reported by the fault
		}
		if rc.Rev < rc.Before || rc.Rev > rc.After {
			add(rc, "outside the source's revisions %d..%d around the snapshot", rc.Before, rc.After)
		}
		var lowMin, lowMax int64 = 1, 1
		for _, cp := range compactions {
			if cp.Err == "" && cp.Return < rc.Call {
				lowMin = max(lowMin, cp.Rev)
			}
			if cp.Call < rc.Return {
				lowMax = max(lowMax, cp.Rev)
			}
		}
		for _, m := range rc.Members {
			if m.Current < rc.Rev {
				add(rc, "%s (restored by %s) is at revision %d", m.Name, m.Tool, m.Current)
			}
			if m.Low < lowMin || m.Low > lowMax {
				add(rc, "%s (restored by %s) reads from revision %d; the source's compaction was between %d and %d", m.Name, m.Tool, m.Low, lowMin, lowMax)
			}
			for r := max(m.Low, rc.Rev-restoreWindow, 1); r <= rc.Rev; r++ {
				got, ok := m.States[r]
				if !ok {
					add(rc, "%s did not read revision %d", m.Name, r)
					continue
				}
				if r > h.Last {
					add(rc, "revision %d is past the history's last, %d", r, h.Last)
					break
				}
				if d := diffStates(got, h.states[r]); d != "" {
					add(rc, "%s (restored by %s) at revision %d: %s", m.Name, m.Tool, r, d)
					break
				}
			}
		}
	}
	return anoms
}

// diffStates describes how got differs from want ("" if equal).
func diffStates(got, want map[string]kvState) string {
	var d []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			d = append(d, fmt.Sprintf("%s missing (want %+v)", k, w))
		} else if g != w {
			d = append(d, fmt.Sprintf("%s is %+v, want %+v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%s=%+v should not exist", k, g))
		}
	}
	sort.Strings(d)
	if len(d) > 3 {
		d = append(d[:3], fmt.Sprintf("and %d more", len(d)-3))
	}
	return strings.Join(d, "; ")
}
