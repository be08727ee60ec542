package launch

import (
	"io"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/internal/config"
)

// The server gets etcd's bootstrap inputs for each discovery way: this
// member alone as initial cluster, and the discovery URL (v2) or token (v3)
// in place of --initial-cluster-token.
func TestDiscoveryServerConfig(t *testing.T) {
	base := []string{"cairn", "--name", "n1", "--initial-advertise-peer-urls", "http://127.0.0.1:2380", "--initial-cluster-token", "static"}
	for _, tc := range []struct {
		args      []string
		token, v2 string
		discovers bool
		initial   map[string][]string
	}{
		{[]string{"--initial-cluster", "n1=http://127.0.0.1:2380,n2=http://127.0.0.2:2380"}, "static", "", false,
			map[string][]string{"n1": {"http://127.0.0.1:2380"}, "n2": {"http://127.0.0.2:2380"}}},
		{[]string{"--discovery", "http://d:2379/v2/keys/t"}, "http://d:2379/v2/keys/t", "http://d:2379/v2/keys/t", true,
			map[string][]string{"n1": {"http://127.0.0.1:2380"}}},
		{[]string{"--discovery-token", "tok", "--discovery-endpoints", "http://d:2379", "--discovery-dial-timeout", "3s"}, "tok", "", true,
			map[string][]string{"n1": {"http://127.0.0.1:2380"}}},
		{[]string{"--discovery-srv", "example.test"}, "static", "", false, map[string][]string{}},
	} {
		cfg, err := config.Load(append(base, tc.args...), nil, io.Discard, io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		scfg, err := serverConfig(cfg, zap.NewNop())
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if scfg.InitialClusterToken != tc.token || scfg.DiscoveryURL != tc.v2 || (scfg.Discovery != nil) != tc.discovers {
			t.Errorf("%q: token %q v2 %q discoverer %v", tc.args, scfg.InitialClusterToken, scfg.DiscoveryURL, scfg.Discovery)
		}
		if len(scfg.InitialCluster) != len(tc.initial) {
			t.Errorf("%q: initial cluster %v, want %v", tc.args, scfg.InitialCluster, tc.initial)
		}
		for name, urls := range tc.initial {
			if got := scfg.InitialCluster[name]; len(got) != len(urls) || got[0] != urls[0] {
				t.Errorf("%q: initial cluster %v, want %v", tc.args, scfg.InitialCluster, tc.initial)
			}
		}
		if d, ok := scfg.Discovery.(v3Discoverer); ok {
			c := d.cfg.Client
			if c.DialTimeout != 3*time.Second || c.RequestTimeout != 5*time.Second || !c.Secure.InsecureTransport || c.Endpoints[0] != "http://d:2379" {
				t.Errorf("v3 client %+v %+v", c, c.Secure)
			}
		}
	}
}
