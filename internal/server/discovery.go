package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
)

// Discoverer registers a new member with a discovery service
// (internal/discovery: v2, v3) and waits for the whole cluster.
type Discoverer interface {
	// Join registers member id, whose peer URLs are self ("name=url,...",
	// sorted), and returns the initial cluster ("name=url,...") once the
	// service knows all its members. Its errors are returned unchanged by
	// New, so the launcher can tell discovery failures apart.
	Join(ctx context.Context, id uint64, self string) (string, error)
}

// errDiscoveryWithExisting is etcd's refusal of --discovery (v2) with
// --initial-cluster-state existing.
var errDiscoveryWithExisting = errors.New("discovery URL should not be set when joining existing initial cluster")

// discoverMembers runs cfg.Discovery for local, the only member of the
// initial cluster, and returns the discovered cluster's members sorted by
// ID. Like etcd it refuses a cluster naming one URL twice; unlike etcd it
// also refuses to bootstrap when a discovered peer already knows this
// member as started (its data dir was lost after a successful bootstrap,
// which etcd meets with a raft panic).
func discoverMembers(cfg Config, client *http.Client, local *membership.Member) ([]*membership.Member, error) {
	lg := cfg.Logger
	if cfg.DiscoveryURL != "" {
		lg.Warn("V2 discovery is deprecated!")
	} else {
		lg.Info("Bootstrapping cluster using v3 discovery.")
	}
	str, err := cfg.Discovery.Join(context.Background(), local.ID, initialClusterString(cfg.InitialCluster))
	if err != nil {
		return nil, err
	}
	um, err := types.NewURLsMap(str)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var members []*membership.Member
	found := false
	for name, urls := range um {
		for _, u := range urls {
			if seen[u.String()] {
				return nil, fmt.Errorf("discovery cluster %s has duplicate url", um.String())
			}
			seen[u.String()] = true
		}
		m := membership.NewMember(name, urls.StringSlice(), cfg.InitialClusterToken, nil)
		members = append(members, m)
		found = found || m.ID == local.ID
	}
	if !found {
		return nil, fmt.Errorf("discovery cluster %s does not hold this member (%s=%s)", um.String(), cfg.Name, joinURLs(local.PeerURLs))
	}
	slices.SortFunc(members, func(a, b *membership.Member) int { return cmpID(a.ID, b.ID) })
	var others []string
	for _, m := range members {
		if m.ID != local.ID {
			others = append(others, m.PeerURLs...)
		}
	}
	if err := checkNotBootstrapped(context.Background(), client, others, local.ID); err != nil {
		return nil, err
	}
	lg.Info("discovered the initial cluster", zap.String("initial-cluster", um.String()))
	return members, nil
}

func cmpID(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
