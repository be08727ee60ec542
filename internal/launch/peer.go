package launch

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/rafthttp"
	"github.com/cairnkv/cairn/internal/server"
)

type peerListener struct {
	url url.URL
	l   net.Listener
}

// listenPeers binds the peer URLs (plain http; peer TLS is not supported
// yet).
func listenPeers(lg *zap.Logger, urls []url.URL) ([]peerListener, error) {
	var out []peerListener
	for _, u := range urls {
		if u.Scheme == "https" || u.Scheme == "unixs" {
			for _, p := range out {
				p.l.Close()
			}
			return nil, fmt.Errorf("cairn does not support TLS peer URLs yet: %s", u.String())
		}
		network, addr := "tcp", u.Host
		if u.Scheme == "unix" {
			network, addr = "unix", u.Host+u.Path
		}
		l, err := net.Listen(network, addr)
		if err != nil {
			for _, p := range out {
				p.l.Close()
			}
			lg.Error("creating peer listener failed", zap.Error(err))
			return nil, fmt.Errorf("listen tcp %s: %w", u.Host, err)
		}
		// etcd's peer connections: every read and write gets a fresh 5 s
		// deadline, so a silent peer connection dies.
		out = append(out, peerListener{url: u, l: rafthttp.NewListener(l)})
	}
	return out, nil
}

func peerHandler(s *server.Server) http.Handler {
	mux := http.NewServeMux()
	if h := s.RaftHandler(); h != nil {
		mux.Handle("/raft", h)
		mux.Handle("/raft/", h)
	}
	// Promotions forwarded by members that do not lead (peer protocol
	// §10.3).
	mux.Handle("/members/promote/", s.PromoteHandler())
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		cv := s.ClusterVersion()
		if cv == "" {
			cv = "not_decided"
		}
		b, _ := json.Marshal(map[string]string{"etcdserver": server.Version, "etcdcluster": cv, "storage": server.StorageVersion})
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
	mux.HandleFunc("/members", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("X-Etcd-Cluster-ID", membership.FormatID(s.ClusterID()))
		w.Header().Set("Content-Type", "application/json")
		ms := s.Cluster().Members()
		if ms == nil {
			ms = []*membership.Member{}
		}
		json.NewEncoder(w).Encode(ms)
	})
	return mux
}
