package config

import (
	"errors"
	"testing"
)

// assertExit checks err is an *ExitError with code.
func assertExit(t *testing.T, err error, code int) *ExitError {
	t.Helper()
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want *ExitError code %d", err, code)
	}
	if ee.Code != code {
		t.Fatalf("exit code = %d (%v), want %d", ee.Code, ee.Err, code)
	}
	return ee
}
