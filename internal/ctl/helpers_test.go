package ctl

import (
	"bytes"
	"strings"
	"testing"
)

// runCtl runs cairnctl in-process with the given environment and stdin.
func runCtl(t *testing.T, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, environ: env,
		getenv: func(k string) string {
			for _, kv := range env {
				if name, v, ok := strings.Cut(kv, "="); ok && name == k {
					return v
				}
			}
			return ""
		}}
	code = a.main(args)
	return out.String(), errb.String(), code
}

// wantRun checks a run's exit code and that stderr holds want.
func wantRun(t *testing.T, gotErr string, gotCode int, wantCode int, want string) {
	t.Helper()
	if gotCode != wantCode {
		t.Errorf("exit code %d, want %d (stderr %q)", gotCode, wantCode, gotErr)
	}
	if !strings.Contains(gotErr, want) {
		t.Errorf("stderr %q does not contain %q", gotErr, want)
	}
}
