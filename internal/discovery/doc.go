// Package discovery finds the initial cluster of a new cluster the three
// ways etcd 3.6 does besides --initial-cluster:
//
//   - v3 discovery (--discovery-token, --discovery-endpoints): the discovery
//     service is an etcd (or cairn) cluster reached with clientv3. Each member
//     puts "<name>=<peer url>,..." under
//     /_etcd/registry/<token>/members/<hex member id> and waits until the
//     number of members in /_etcd/registry/<token>/_config/size have
//     registered; the first size of them by create revision form the cluster.
//   - v2 discovery (--discovery <url>): the same idea over the v2 keys API,
//     the URL's path being the token directory (discovery.etcd.io, or any
//     server of /v2/keys with watches: http://host:2379/v2/keys/<dir>).
//     Registration is create-only, so a second registration of one member ID
//     is refused.
//   - DNS SRV (--discovery-srv, --discovery-srv-name): the peers are the
//     targets of _etcd-server-ssl._tcp.<domain> (https) and
//     _etcd-server._tcp.<domain> (http).
//
// Error texts and the retry policy (2^n seconds, at most 256 s, without
// limit, for errors reaching the service) are etcd's. The package only talks
// to the discovery service; the server builds the cluster from the string it
// returns, and the launcher turns its errors into etcd's exit lines.
package discovery
