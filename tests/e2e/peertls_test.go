package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/tests/framework"
	"github.com/cairnkv/cairn/tests/refs"
)

// tlsPeers switches a prepared cluster's peer URLs to https and gives every
// member flags.
func tlsPeers(c *framework.Cluster, flags ...string) {
	var pairs []string
	for _, m := range c.Members {
		m.Peer = strings.Replace(m.Peer, "http://", "https://", 1)
		pairs = append(pairs, m.Name+"="+m.Peer)
	}
	for _, m := range c.Members {
		m.InitialCluster = strings.Join(pairs, ",")
		m.Extra = append(m.Extra, flags...)
	}
}

// Peers over TLS, with client certificates checked both ways, and with
// --peer-auto-tls: cairn clusters, and cairn and etcd 3.6.16 members in one
// cluster, form and serve. A member whose certificate is not signed by the
// cluster's CA is kept out.
func TestPeerTLS(t *testing.T) {
	ref := refs.EtcdRelease(t, refs.Default)
	cairn := framework.Cairn(t)
	dir := t.TempDir()
	certs := framework.NewCerts(t, dir)
	mtls := []string{"--peer-cert-file", certs.PeerCert, "--peer-key-file", certs.PeerKey,
		"--peer-trusted-ca-file", certs.CA, "--peer-client-cert-auth"}
	for _, tc := range []struct {
		name  string
		bins  []string
		flags []string
	}{
		{"cairn mTLS", []string{cairn}, mtls},
		{"mixed mTLS", []string{ref.Etcd, cairn}, mtls},
		{"mixed auto TLS", []string{cairn, ref.Etcd}, []string{"--peer-auto-tls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := framework.NewCluster(t, tc.bins, 3)
			tlsPeers(c, tc.flags...)
			c.Start(60 * time.Second)
			for i, m := range c.Members {
				cl := m.Client3()
				if _, err := cl.Put(ctxT(t), fmt.Sprintf("tls/%d", i), m.Name); err != nil {
					t.Fatalf("put through %s: %v", m.Name, err)
				}
				cl.Close()
			}
			for _, m := range c.Members {
				cl := m.Client3()
				g, err := cl.Get(ctxT(t), "tls/", clientv3.WithPrefix(), clientv3.WithCountOnly())
				cl.Close()
				if err != nil || g.Count != 3 {
					t.Fatalf("%s: %v %v", m.Name, g, err)
				}
			}
		})
	}

	// A member presenting a certificate from another CA gets no quorum: a
	// cluster of two with one such member never elects a leader, and the
	// refusal is logged.
	t.Run("foreign certificate refused", func(t *testing.T) {
		other := framework.NewCerts(t, t.TempDir())
		c := framework.NewCluster(t, []string{cairn}, 2)
		tlsPeers(c)
		c.Members[0].Extra = append(c.Members[0].Extra, mtls...)
		c.Members[1].Extra = append(c.Members[1].Extra, "--peer-cert-file", other.PeerCert, "--peer-key-file", other.PeerKey,
			"--peer-trusted-ca-file", other.CA, "--peer-client-cert-auth")
		for _, m := range c.Members {
			m.Start()
		}
		if !c.Members[0].WaitLog("rejected connection on peer endpoint", 20*time.Second) {
			t.Fatalf("no refusal logged:\n%s", c.Members[0].Log())
		}
		cl := c.Members[0].Client3()
		defer cl.Close()
		if _, err := cl.Put(ctxTimeout(t, 3*time.Second), "k", "v"); err == nil {
			t.Fatal("a write succeeded without a quorum of trusted members")
		}
	})
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
