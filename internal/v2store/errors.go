package v2store

import (
	"encoding/json"
	"net/http"
)

// Error codes of the v2 API (spec D.7).
const (
	EcodeKeyNotFound    = 100
	EcodeTestFailed     = 101
	EcodeNotFile        = 102
	EcodeNotDir         = 104
	EcodeNodeExist      = 105
	EcodeRootROnly      = 107
	EcodeDirNotEmpty    = 108
	EcodePrevValueReq   = 201
	EcodeTTLNaN         = 202
	EcodeIndexNaN       = 203
	EcodeInvalidField   = 209
	EcodeInvalidForm    = 210
	EcodeRefreshValue   = 211
	EcodeRefreshTTLReq  = 212
	EcodeRaftInternal   = 300
	EcodeLeaderElect    = 301
	EcodeEventIndexGone = 401
)

var messages = map[int]string{
	100: "Key not found",
	101: "Compare failed",
	102: "Not a file",
	103: "Reached the max number of peers in the cluster",
	104: "Not a directory",
	105: "Key already exists",
	106: "The prefix of given key is a keyword in etcd",
	107: "Root is read only",
	108: "Directory not empty",
	109: "Peer address has existed",
	110: "The request requires user authentication",
	200: "Value is Required in POST form",
	201: "PrevValue is Required in POST form",
	202: "The given TTL in POST form is not a number",
	203: "The given index in POST form is not a number",
	204: "Value or TTL is required in POST form",
	205: "The given timeout in POST form is not a number",
	206: "Name is required in POST form",
	207: "Index or value is required",
	208: "Index and value cannot both be specified",
	209: "Invalid field",
	210: "Invalid POST form",
	211: "Value provided on refresh",
	212: "A TTL must be provided on refresh",
	300: "Raft Internal Error",
	301: "During Leader Election",
	400: "watcher is cleared due to etcd recovery",
	401: "The event in requested index is outdated and cleared",
}

// Error is a v2 API error: its JSON is the response body.
type Error struct {
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
	Cause     string `json:"cause,omitempty"`
	Index     uint64 `json:"index"`
}

// NewError returns the error code with its table message.
func NewError(code int, cause string, index uint64) *Error {
	return &Error{ErrorCode: code, Message: messages[code], Cause: cause, Index: index}
}

func (e *Error) Error() string { return e.Message + " (" + e.Cause + ")" }

// StatusCode is the HTTP status the error is answered with.
func (e *Error) StatusCode() int {
	switch e.ErrorCode {
	case EcodeKeyNotFound:
		return http.StatusNotFound
	case EcodeTestFailed, EcodeNodeExist:
		return http.StatusPreconditionFailed
	case EcodeNotFile, EcodeDirNotEmpty:
		return http.StatusForbidden
	case 110:
		return http.StatusUnauthorized
	case EcodeRaftInternal, EcodeLeaderElect:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// JSON is the error's body without the trailing newline.
func (e *Error) JSON() []byte {
	b, _ := json.Marshal(e)
	return b
}
