package e2e

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// Past --quota-backend-bytes, writes fail with etcd's "database space
// exceeded", the NOSPACE alarm is raised and shown by /health and etcdctl;
// deletes still work; compact + defrag + disarm make room again — the
// recovery etcd's operators follow, done with the official etcdctl.
func TestQuotaRaisesNoSpaceAlarm(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	m := framework.NewMember(t, framework.Cairn(t), "n1", "--quota-backend-bytes", fmt.Sprint(512*1024))
	m.StartAndWait(20 * time.Second)
	c := m.Client3()
	defer c.Close()
	ctx := ctxT(t)
	value := strings.Repeat("v", 8*1024)
	var err error
	var i int
	for i = 0; i < 1000; i++ {
		if _, err = c.Put(ctx, fmt.Sprintf("k%04d", i), value); err != nil {
			break
		}
	}
	if !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("after %d puts: %v (want %v)", i, err, rpctypes.ErrNoSpace)
	}
	al, err := c.AlarmList(ctx)
	if err != nil || len(al.Alarms) != 1 || al.Alarms[0].Alarm != pb.AlarmType_NOSPACE {
		t.Fatalf("alarm list: %+v %v", al, err)
	}
	out, _, code := framework.Run(t, nil, "", ref.Etcdctl, "--endpoints", m.Endpoint(), "alarm", "list")
	if code != 0 || out != fmt.Sprintf("memberID:%d alarm:NOSPACE \n", al.Alarms[0].MemberID) {
		t.Fatalf("etcdctl alarm list: %q (exit %d)", out, code)
	}
	resp, herr := http.Get(m.Client + "/health")
	if herr != nil {
		t.Fatal(herr)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || string(body) != `{"health":"false","reason":"ALARM NOSPACE"}` {
		t.Fatalf("/health under NOSPACE: %d %s", resp.StatusCode, body)
	}
	// Writes stay refused even when small; deletes go through.
	if _, err := c.Put(ctx, "small", "x"); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("small put under NOSPACE: %v", err)
	}
	d, err := c.Delete(ctx, "k", clientv3.WithPrefix())
	if err != nil || d.Deleted != int64(i) {
		t.Fatalf("delete under NOSPACE: %+v %v", d, err)
	}
	// The operator's recovery: compact, defrag, disarm.
	if _, err := c.Compact(ctx, d.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"defrag"}, {"alarm", "disarm"}} {
		out, errOut, code := framework.Run(t, nil, "", ref.Etcdctl, append([]string{"--endpoints", m.Endpoint()}, args...)...)
		if code != 0 {
			t.Fatalf("etcdctl %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	if _, err := c.Put(ctx, "after", "recovery"); err != nil {
		t.Fatalf("put after recovery: %v", err)
	}
}
