package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cairnkv/cairn/internal/membership"
)

// Timeouts of etcd's membership fetches from peers' /members.
const (
	joinFetchTimeout      = 10 * time.Second // joining with --initial-cluster-state existing
	bootstrapCheckTimeout = time.Second      // the new cluster's "already bootstrapped" check
)

// errNoClusterInfo is etcd's text when no peer gave a usable member list.
var errNoClusterInfo = errors.New("could not retrieve cluster information from the given URLs")

// remoteCluster is a cluster as one of its members' /members describes it.
type remoteCluster struct {
	id      uint64
	members []*membership.Member
}

// fetchCluster asks each URL's /members in turn and returns the first answer
// that is a non-empty JSON member array with a parsable X-Etcd-Cluster-ID.
func fetchCluster(ctx context.Context, client *http.Client, urls []string, timeout time.Duration) (remoteCluster, error) {
	for _, u := range urls {
		rc, err := fetchOne(ctx, client, u, timeout)
		if err == nil {
			return rc, nil
		}
	}
	return remoteCluster{}, errNoClusterInfo
}

func fetchOne(ctx context.Context, client *http.Client, u string, timeout time.Duration) (remoteCluster, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(u, "/")+"/members", nil)
	if err != nil {
		return remoteCluster{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return remoteCluster{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return remoteCluster{}, err
	}
	var ms []*membership.Member
	if err := json.Unmarshal(b, &ms); err != nil {
		return remoteCluster{}, fmt.Errorf("decode members from %s: %w", u, err)
	}
	if len(ms) == 0 {
		return remoteCluster{}, fmt.Errorf("no members from %s", u)
	}
	cid, err := membership.ParseID(resp.Header.Get("X-Etcd-Cluster-ID"))
	if err != nil {
		return remoteCluster{}, fmt.Errorf("cluster ID from %s: %w", u, err)
	}
	return remoteCluster{id: cid, members: ms}, nil
}

// otherPeerURLs lists, sorted, the peer URLs of every initial-cluster entry
// but this member's.
func otherPeerURLs(cfg Config) []string {
	var out []string
	for name, urls := range cfg.InitialCluster {
		if name != cfg.Name {
			out = append(out, urls...)
		}
	}
	slices.Sort(out)
	return out
}

// adoptIDs matches the local initial cluster against the running cluster's
// members by peer URLs, as etcd does when joining, and returns the running
// cluster's members with this member's ID. Errors carry etcd's texts.
func adoptIDs(cfg Config, local []*membership.Member, remote remoteCluster) ([]*membership.Member, uint64, error) {
	if len(local) != len(remote.members) {
		return nil, 0, fmt.Errorf("error validating peerURLs %s: member count is unequal", initialClusterString(cfg.InitialCluster))
	}
	key := func(urls []string) string {
		u := slices.Clone(urls)
		slices.Sort(u)
		return strings.Join(u, ",")
	}
	byURLs := map[string]*membership.Member{}
	for _, m := range local {
		byURLs[key(m.PeerURLs)] = m
	}
	var localID uint64
	adv := key(cfg.PeerURLs)
	for _, rm := range remote.members {
		if _, ok := byURLs[key(rm.PeerURLs)]; !ok {
			return nil, 0, fmt.Errorf("error validating peerURLs %s: PeerURLs: no match found for existing member (%s, %v), last resolver error (<nil>)",
				initialClusterString(cfg.InitialCluster), membership.FormatID(rm.ID), rm.PeerURLs)
		}
		if key(rm.PeerURLs) == adv {
			localID = rm.ID
		}
	}
	if localID == 0 {
		return nil, 0, fmt.Errorf("error validating peerURLs %s: PeerURLs: no match found for the local member's --initial-advertise-peer-urls %s",
			initialClusterString(cfg.InitialCluster), adv)
	}
	return remote.members, localID, nil
}

// checkNotBootstrapped refuses a new-cluster bootstrap of a member a running
// cluster already knows as started (etcd's "already bootstrapped" check).
func checkNotBootstrapped(ctx context.Context, client *http.Client, peerURLs []string, localID uint64) error {
	for _, u := range peerURLs {
		rc, err := fetchOne(ctx, client, u, bootstrapCheckTimeout)
		if err != nil {
			continue
		}
		for _, m := range rc.members {
			if m.ID == localID && len(m.ClientURLs) > 0 {
				return fmt.Errorf("member %s has already been bootstrapped", membership.FormatID(localID))
			}
		}
	}
	return nil
}
