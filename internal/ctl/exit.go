package ctl

import (
	"errors"
	"fmt"
)

// Exit codes, as etcdctl uses them (E:pkg/cobrautl/error.go).
const (
	ExitSuccess       = 0
	ExitError         = 1   // general failure, including RPC errors
	ExitBadConnection = 2   // the client could not be created
	ExitInvalidInput  = 3   // malformed txn or watch input
	ExitBadFeature    = 4   // a valid flag with an unsupported value, e.g. an output format
	ExitInterrupted   = 5   // snapshot save failures, watch cancelled by the server
	ExitBadArgs       = 128 // wrong arguments
)

// exitError carries the exit code a failure maps to. Unless silent, Main
// prints it as "Error: <err>" on stderr, exactly like etcdctl.
type exitError struct {
	code   int
	err    error
	silent bool // already reported (or etcdctl prints nothing): just exit
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitWith wraps err with the exit code it maps to.
func exitWith(code int, err error) error { return &exitError{code: code, err: err} }

// exitf is exitWith with a formatted error.
func exitf(code int, format string, a ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, a...)}
}

// exitSilently ends the command with code and no "Error:" line.
func exitSilently(code int) error {
	return &exitError{code: code, err: fmt.Errorf("exit status %d", code), silent: true}
}

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitError
}
