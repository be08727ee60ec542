package ctl

import "testing"

func TestEndpointGroup(t *testing.T) {
	// A group prints its help, exit 0, for no or an unknown subcommand.
	for _, args := range [][]string{{"endpoint"}, {"endpoint", "bogus"}} {
		stdout, _, code := runCtl(t, nil, "", args...)
		if code != 0 || stdout[:5] != "NAME:" {
			t.Errorf("%v: code %d stdout %q", args, code, stdout)
		}
	}
	_, stderr, code := runCtl(t, nil, "", "endpoint", "status", "-w", "yaml")
	wantRun(t, stderr, code, ExitBadFeature, "Error: unsupported output format\n")
	_, stderr, code = runCtl(t, nil, "", "endpoint", "health", "-w", "protobuf", "--endpoints=")
	wantRun(t, stderr, code, ExitBadFeature, "Error: protobuf not supported as output format\n")
}

func TestClusterEndpointsWithoutCluster(t *testing.T) {
	a := &app{}
	a.g.endpoints = []string{"x:1", "y:2"}
	eps, err := a.clusterEndpoints(&endpointOptions{})
	if err != nil || len(eps) != 2 || eps[1] != "y:2" {
		t.Errorf("eps %v err %v", eps, err)
	}
}
