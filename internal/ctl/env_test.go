package ctl

import (
	"strings"
	"testing"
)

func TestEnvConflictIsFatal(t *testing.T) {
	_, stderr, code := runCtl(t, []string{"ETCDCTL_A=1", "ETCDCTL_DIAL_TIMEOUT=", "ETCDCTL_B=2"}, "",
		"get", "foo", "--dial-timeout=1s")
	if code != ExitError {
		t.Errorf("exit code %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a warning then the fatal line, got %q", stderr)
	}
	if !strings.Contains(lines[0], `"level":"warn","ts":`) ||
		!strings.HasSuffix(lines[0], `"caller":"flags/flag.go:94","msg":"unrecognized environment variable","environment-variable":"ETCDCTL_A=1"}`) {
		t.Errorf("warning line %q", lines[0])
	}
	if !strings.Contains(lines[1], `"level":"fatal"`) ||
		!strings.HasSuffix(lines[1], `"msg":"conflicting environment variable is shadowed by corresponding command-line flag (either unset environment variable or disable flag))","environment-variable":"ETCDCTL_DIAL_TIMEOUT"}`) {
		t.Errorf("fatal line %q", lines[1])
	}
}

func TestEnvSetsUnsetFlags(t *testing.T) {
	// ETCDCTL_WRITE_OUT applies; the bad output format proves it was read.
	_, stderr, code := runCtl(t, []string{"ETCDCTL_WRITE_OUT=yaml"}, "", "get", "foo")
	wantRun(t, stderr, code, ExitBadFeature, "Error: unsupported output format\n")
	// Local flags have no variables.
	_, stderr, _ = runCtl(t, []string{"ETCDCTL_LIMIT=1", "ETCDCTL_WRITE_OUT=yaml"}, "", "get", "foo")
	if !strings.Contains(stderr, `"environment-variable":"ETCDCTL_LIMIT=1"`) {
		t.Errorf("ETCDCTL_LIMIT should be unrecognized: %q", stderr)
	}
}

func TestEnvName(t *testing.T) {
	if got := envName("insecure-skip-tls-verify"); got != "ETCDCTL_INSECURE_SKIP_TLS_VERIFY" {
		t.Errorf("envName = %q", got)
	}
}
