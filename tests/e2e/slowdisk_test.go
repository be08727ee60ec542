package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/failpoint"
	"github.com/cairnkv/cairn/tests/framework"
)

// A leader whose disk is slow keeps leading while it writes: every fsync of
// its WAL takes a second longer (the wal-slow-fsync hook of the cairn_failpoints build), twice the election
// timeout, yet its raft loop does not wait for its own fsyncs, so its
// heartbeats keep reaching the followers and nobody starts an election.
// Writes sent to the followers are committed by the followers' own
// acknowledgements meanwhile. (With the loop waiting for each fsync, every
// write held the heartbeats back for a second and leadership moved on.)
func TestSlowLeaderDiskKeepsLeader(t *testing.T) {
	c := framework.NewCluster(t, []string{framework.CairnFailpoints(t)}, 3, "--heartbeat-interval", "50", "--election-timeout", "500")
	c.Members[0].Env = []string{failpoint.EnvVar + "=" + failpoint.WALSlowFsync}
	c.Start(90 * time.Second)
	// A graceful stop with one-second fsyncs takes tens of seconds.
	defer c.Members[0].Kill()
	moveLeaderTo(t, c, 0)
	leaderID := memberID(t, c.Members[0])

	status := func() (lead, term uint64) {
		cl := c.Members[1].Client3()
		defer cl.Close()
		st, err := cl.Status(ctxT(t), c.Members[1].Client)
		if err != nil {
			t.Fatalf("status of %s: %v", c.Members[1].Name, err)
		}
		return st.Leader, st.RaftTerm
	}
	lead, term0 := status()
	if lead != leaderID {
		t.Fatalf("leader %x, want %s (%x)", lead, c.Members[0].Name, leaderID)
	}
	cl := clientOf(t, c.Members[1], c.Members[2])
	defer cl.Close()
	start := time.Now()
	const writes = 8
	for i := 0; i < writes; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := cl.Put(ctx, fmt.Sprintf("slow-%d", i), "v")
		cancel()
		if err != nil {
			t.Fatalf("put %d through the followers: %v", i, err)
		}
	}
	took := time.Since(start)
	lead, term1 := status()
	if lead != leaderID || term1 != term0 {
		t.Fatalf("leadership changed while the leader's disk was slow: term %d → %d, leader %x → %x", term0, term1, leaderID, lead)
	}
	t.Logf("%d puts through the followers in %s with the leader's fsyncs 1 s each; term %d unchanged", writes, took, term0)
}
