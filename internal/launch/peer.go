package launch

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/membership"
	"github.com/cairnkv/cairn/internal/rafthttp"
	"github.com/cairnkv/cairn/internal/server"
)

type peerListener struct {
	url    url.URL
	l      net.Listener
	secure bool
}

// listenPeers binds the peer URLs. Every connection gets etcd's 5 s
// per-read and per-write deadlines (a silent peer connection dies); https
// URLs terminate TLS with info on top of that (client certificate checks
// included), and serve HTTP/1.1 only, as etcd's peers do.
func listenPeers(lg *zap.Logger, urls []url.URL, info *transport.TLSInfo) ([]peerListener, error) {
	var out []peerListener
	fail := func(err error) ([]peerListener, error) {
		for _, p := range out {
			p.l.Close()
		}
		return nil, err
	}
	for _, u := range urls {
		secure := u.Scheme == "https" || u.Scheme == "unixs"
		if secure && info == nil {
			return fail(fmt.Errorf("TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url %s with HTTPS scheme", u.String()))
		}
		if !secure && info != nil {
			lg.Warn("scheme is http or unix while key and cert files are present; ignoring key and cert files", zap.String("peer-url", u.String()))
		}
		network, addr := "tcp", u.Host
		if u.Scheme == "unix" || u.Scheme == "unixs" {
			network, addr = "unix", u.Host+u.Path
		}
		raw, err := net.Listen(network, addr)
		if err != nil {
			lg.Error("creating peer listener failed", zap.Error(err))
			return fail(fmt.Errorf("listen tcp %s: %w", u.Host, err))
		}
		l := rafthttp.NewListener(raw)
		if secure {
			tl, err := transport.NewTLSListener(l, info)
			if err != nil {
				raw.Close()
				return fail(fmt.Errorf("peer TLS on %s: %w", u.String(), err))
			}
			l = tl
		}
		out = append(out, peerListener{url: u, l: l, secure: secure})
	}
	return out, nil
}

func peerHandler(s *server.Server) http.Handler {
	mux := http.NewServeMux()
	if h := s.RaftHandler(); h != nil {
		mux.Handle("/raft", h)
		mux.Handle("/raft/", h)
	}
	mux.Handle("/members/hashkv", s.HashKVHandler())
	// Promotions forwarded by members that do not lead (peer protocol
	// §10.3).
	mux.Handle("/members/promote/", s.PromoteHandler())
	mux.Handle(server.LeasePath, s.LeaseHandler())
	mux.Handle(server.LeaseInternalPath, s.LeaseHandler())
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
