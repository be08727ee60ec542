package robustness

import (
	"context"
	"testing"
	"time"

	"github.com/cairnkv/cairn/internal/failpoint"
	"github.com/cairnkv/cairn/tests/framework"
)

// TestFailpointsOnlyInTaggedBuild: a normal cairn started with every
// failpoint variable set ignores them (the put hook does not drop a put,
// the armed crash point does not kill it, the disk stays healthy), and the
// cairn_failpoints build honours the same put hook, so the check can fail.
func TestFailpointsOnlyInTaggedBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	env := []string{
		failpoint.EnvVar + "=" + failpoint.PutAckUnwritten,
		failpoint.CrashEnvVar + "=" + failpoint.WALBeforeFsync + ":3",
		failpoint.DiskEnvVar + "=" + failpoint.DiskFull,
	}
	for _, c := range []struct {
		name    string
		bin     string
		env     []string
		dropped bool // the put hook acknowledges the put without writing it
	}{
		{"normal build", framework.Cairn(t), env, false},
		{"tagged build", framework.CairnFailpoints(t), env[:1], true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := framework.NewMember(t, c.bin, "m1")
			m.Env = c.env
			m.StartAndWait(30 * time.Second)
			cl := m.Client3()
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for i := range 5 { // several WAL saves: past the crash point's third hit
				if _, err := cl.Put(ctx, "k", "v"+string(rune('1'+i))); err != nil {
					t.Fatalf("put: %v", err)
				}
			}
			if _, err := cl.Put(ctx, "k", "v0"); err != nil {
				t.Fatalf("put: %v", err)
			}
			r, err := cl.Get(ctx, "k")
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			got := ""
			if len(r.Kvs) == 1 {
				got = string(r.Kvs[0].Value)
			}
			if dropped := got != "v0"; dropped != c.dropped {
				t.Fatalf("k = %q after putting v0: hook honoured %t, want %t", got, dropped, c.dropped)
			}
			select {
			case <-m.Done():
				t.Fatalf("the member exited: %v\n%s", m.ExitErr(), m.Log())
			default:
			}
		})
	}
}
