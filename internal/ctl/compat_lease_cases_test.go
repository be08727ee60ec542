package ctl_test

import (
	"context"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// seedLeases grants leases with chosen IDs (etcdctl cannot choose one, and
// server-chosen IDs differ between servers), with one key each (etcd lists
// a lease's keys in map order, so only one key compares byte for byte).
func seedLeases(cli *clientv3.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lc := pb.NewLeaseClient(cli.ActiveConnection())
	for _, l := range []struct{ id, ttl int64 }{{0x1000, 9000}, {0x2000, 8000}} {
		if _, err := lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: l.id, TTL: l.ttl}); err != nil {
			return fmt.Errorf("grant lease %x: %w", l.id, err)
		}
	}
	for _, kv := range leaseSeed {
		if _, err := cli.Put(ctx, kv.key, "v", clientv3.WithLease(kv.id)); err != nil {
			return fmt.Errorf("put %q: %w", kv.key, err)
		}
	}
	return nil
}

// leaseSeed are the keys seedLeases puts (value "v"), in order, with
// their leases.
var leaseSeed = []struct {
	key string
	id  clientv3.LeaseID
}{{"leased/a", 0x1000}, {"leased/b", 0x2000}}

// leaseCases are the deterministic lease commands: argument and server
// errors, and the seeded leases 1000 (TTL 9000 s, key leased/a) and 2000
// (TTL 8000 s, key leased/b). A successful grant prints an ID the
// server chose, which differs between the two servers: it is left to the
// printer tests. timetolive's remaining TTL is read just after a
// keep-alive, so both sides see the same whole second.
func leaseCases() []compatCase {
	var cs []compatCase
	add := func(more ...compatCase) { cs = append(cs, more...) }
	add(c("lease").bare(), c("lease", "--help").bare(), c("lease", "grant", "--help").bare(),
		c("lease", "timetolive", "--help").bare(), c("lease", "keep-alive", "--help").bare(), c("lease", "bogus").bare())
	add(c("lease", "grant"), c("lease", "grant", "x"), c("lease", "grant", "1", "2"), c("lease", "grant", "9000000001"),
		c("lease", "grant", "9000000001", "-w", "json"), c("lease", "revoke"), c("lease", "revoke", "zz"),
		c("lease", "revoke", "1234"), c("lease", "timetolive"), c("lease", "timetolive", "zz"),
		c("lease", "keep-alive"), c("lease", "keep-alive", "zz"), c("lease", "keep-alive", "--once", "1234"),
		c("leas", "li"))
	add(inFormats("lease", "timetolive", "1234")...)
	add(inFormats("lease", "keep-alive", "1234")...)
	add(inFormats("lease", "list")...)
	add(c("lease", "list", "--hex", "-w", "fields"), c("lease", "list", "-w", "json", "--hex"))
	for _, f := range formats {
		add(c("lease", "keep-alive", "--once", "1000", "-w", f), c("lease", "timetolive", "1000", "--keys", "-w", f))
	}
	add(c("lease", "keep-alive", "--once", "1000", "--hex", "-w", "fields"), c("lease", "timetolive", "1000", "--hex", "-w", "fields"),
		c("lease", "keep-alive", "--once", "1000"), c("lease", "timetolive", "2000", "--keys"))
	add(c("put", "leased/c", "v", "--lease=2000"), c("get", "leased", "--prefix", "-w", "json"),
		c("lease", "revoke", "2000", "-w", "protobuf"), c("lease", "revoke", "2000", "-w", "table"),
		c("get", "leased", "--prefix"), c("lease", "revoke", "1000", "-w", "json"), c("lease", "revoke", "1000"),
		c("get", "leased", "--prefix", "--count-only"), c("lease", "timetolive", "1000", "--keys"), c("lease", "list"))
	return cs
}
