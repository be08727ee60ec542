package discovery

import (
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/srv"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.uber.org/zap"
)

// SRVCluster builds the initial cluster of member name from the DNS SRV
// records of domain, as etcd's --discovery-srv: the targets of
// _etcd-server-ssl[-<serviceName>]._tcp.<domain> become https peers and
// those of _etcd-server[-<serviceName>]._tcp.<domain> http peers. A target
// resolving to one of this member's advertised peer URLs (apurls) is named
// name, the others "0", "1", ... (client/pkg's srv.GetCluster, which etcd
// uses). The result must name this member. Names go through the process's
// resolver (net.DefaultResolver; see UseTestDNSServer).
func SRVCluster(lg *zap.Logger, domain, serviceName, name string, apurls []string) (string, error) {
	urls, err := types.NewURLs(apurls)
	if err != nil {
		return "", err
	}
	suffix := ""
	if serviceName != "" {
		suffix = "-" + serviceName
	}
	var found []string
	var errs []error
	for _, q := range []struct{ scheme, service string }{{"https", "etcd-server-ssl" + suffix}, {"http", "etcd-server" + suffix}} {
		got, err := srv.GetCluster(q.scheme, q.service, name, domain, urls)
		if err == nil {
			found = append(found, got...)
		}
		errs = append(errs, err)
		lg.Info("get cluster for "+strings.TrimSuffix(q.service, suffix)+" SRV",
			zap.String("service-scheme", q.scheme), zap.String("service-name", q.service),
			zap.String("server-name", name), zap.String("discovery-srv", domain),
			zap.Strings("advertise-peer-urls", apurls), zap.Strings("found-cluster", found), zap.Error(err))
	}
	cerr := errors.Join(errs...)
	if cerr != nil {
		lg.Warn("failed to resolve during SRV discovery", zap.Error(cerr))
	}
	if len(found) == 0 {
		return "", cerr
	}
	for _, s := range found {
		lg.Info("got bootstrap from DNS for etcd-server", zap.String("node", s))
	}
	cluster := strings.Join(found, ",")
	um, err := types.NewURLsMap(cluster)
	if err != nil {
		return "", err
	}
	if _, ok := um[name]; !ok {
		return "", fmt.Errorf("cannot find local etcd member %q in SRV records", name)
	}
	return cluster, nil
}

// SRVNeedsServerName reports whether an SRV-discovered cluster has https
// peers, in which case etcd verifies peer certificates against the SRV
// domain when no peer CA file is given.
func SRVNeedsServerName(cluster string) bool { return strings.Contains(cluster, "https://") }
