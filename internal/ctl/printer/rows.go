package printer

import (
	"fmt"
	clientv3 "go.etcd.io/etcd/client/v3"
	"strings"
)

// Tables shared by the simple format (rows joined with ", ") and the table format.

func endpointHealthTable(hs []EndpointHealth) (hdr []string, rows [][]string) {
	hdr = []string{"endpoint", "health", "took", "error"}
	for _, h := range hs {
		rows = append(rows, []string{h.Ep, fmt.Sprint(h.Health), h.Took, h.Error})
	}
	return hdr, rows
}

func endpointStatusTable(ss []EndpointStatus) (hdr []string, rows [][]string) {
	hdr = []string{"endpoint", "ID", "version", "storage version", "db size", "in use", "percentage not in use", "quota",
		"is leader", "is learner", "raft term", "raft index", "raft applied index", "errors",
		"downgrade target version", "downgrade enabled"}
	for _, s := range ss {
		r := s.Resp
		notInUse := int64(0)
		if r.DbSize != 0 {
			notInUse = 100 - r.DbSizeInUse*100/r.DbSize
		}
		rows = append(rows, []string{
			s.Ep,
			fmt.Sprintf("%x", r.Header.MemberId),
			r.Version,
			r.StorageVersion,
			humanBytes(uint64(r.DbSize)),
			humanBytes(uint64(r.DbSizeInUse)),
			fmt.Sprintf("%d%%", notInUse),
			humanBytes(uint64(r.DbSizeQuota)),
			fmt.Sprint(r.Leader == r.Header.MemberId),
			fmt.Sprint(r.IsLearner),
			fmt.Sprint(r.RaftTerm),
			fmt.Sprint(r.RaftIndex),
			fmt.Sprint(r.RaftAppliedIndex),
			strings.Join(r.Errors, ", "),
			r.DowngradeInfo.GetTargetVersion(),
			fmt.Sprint(r.DowngradeInfo.GetEnabled()),
		})
	}
	return hdr, rows
}

func endpointHashKVTable(hs []EndpointHashKV) (hdr []string, rows [][]string) {
	hdr = []string{"endpoint", "hash", "hash revision"}
	for _, h := range hs {
		rows = append(rows, []string{h.Ep, fmt.Sprint(h.Resp.Hash), fmt.Sprint(h.Resp.HashRevision)})
	}
	return hdr, rows
}

func memberListTable(r clientv3.MemberListResponse) (hdr []string, rows [][]string) {
	hdr = []string{"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"}
	for _, m := range r.Members {
		status := "started"
		if m.Name == "" {
			status = "unstarted"
		}
		rows = append(rows, []string{
			fmt.Sprintf("%x", m.ID),
			status,
			m.Name,
			strings.Join(m.PeerURLs, ","),
			strings.Join(m.ClientURLs, ","),
			fmt.Sprint(m.IsLearner),
		})
	}
	return hdr, rows
}

func dbStatusTable(ds DBStatus) (hdr []string, rows [][]string) {
	hdr = []string{"hash", "revision", "total keys", "total size", "version"}
	rows = [][]string{{
		fmt.Sprintf("%x", ds.Hash),
		fmt.Sprint(ds.Revision),
		fmt.Sprint(ds.TotalKey),
		humanBytes(uint64(ds.TotalSize)),
		ds.Version,
	}}
	return hdr, rows
}

func dbHashKVTable(h DBHashKV) (hdr []string, rows [][]string) {
	hdr = []string{"hash", "hash revision", "compact revision"}
	rows = [][]string{{fmt.Sprint(h.Hash), fmt.Sprint(h.HashRevision), fmt.Sprint(h.CompactRevision)}}
	return hdr, rows
}
