package rafthttp

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// version is a parsed three-part version; pre-release and build suffixes
// are accepted and ignored, as every comparison here uses major.minor only.
type version struct {
	Major, Minor, Patch uint64
}

func (v version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// majorMinor is v with the patch dropped.
func (v version) majorMinor() version { return version{Major: v.Major, Minor: v.Minor} }

// compareMajorMinor returns -1, 0 or 1 as a's major.minor is below, equal
// to or above b's.
func compareMajorMinor(a, b version) int {
	switch {
	case a.Major != b.Major:
		return cmpUint(a.Major, b.Major)
	default:
		return cmpUint(a.Minor, b.Minor)
	}
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// errBadVersion marks a version header that is not "X.Y.Z[-pre][+build]".
var errBadVersion = errors.New("not in dotted-tri format")

// parseVersion parses "X.Y.Z" with an optional "-pre" and "+build" (etcd's
// semver rules). etcd panics on anything else; cairn returns an error.
func parseVersion(s string) (version, error) {
	core := s
	if i := strings.IndexByte(core, '+'); i >= 0 {
		core = core[:i]
	}
	if i := strings.IndexByte(core, '-'); i >= 0 {
		core = core[:i]
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return version{}, fmt.Errorf("version %q: %w", s, errBadVersion)
	}
	var n [3]uint64
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return version{}, fmt.Errorf("version %q: %w", s, errBadVersion)
		}
		n[i] = v
	}
	return version{Major: n[0], Minor: n[1], Patch: n[2]}, nil
}

// headerVersion reads a version header; an absent header means 2.0.0, as
// in etcd (so a peer that sends none is refused, and a stream answer
// without one is never used).
func headerVersion(h http.Header, name string) (version, error) {
	s := h.Get(name)
	if s == "" {
		return version{Major: 2}, nil
	}
	return parseVersion(s)
}

// streamSupport lists, by major.minor, the stream types a peer of that
// version serves. Versions at or above our own are assumed to serve both.
// 2.0 (and an answer with no X-Server-Version) serves none.
var streamSupport = map[version][]streamType{
	{Major: 2, Minor: 1}: {streamMsgAppV2, streamMessage},
	{Major: 2, Minor: 2}: {streamMsgAppV2, streamMessage},
	{Major: 2, Minor: 3}: {streamMsgAppV2, streamMessage},
	{Major: 3, Minor: 0}: {streamMsgAppV2, streamMessage},
	{Major: 3, Minor: 1}: {streamMsgAppV2, streamMessage},
	{Major: 3, Minor: 2}: {streamMsgAppV2, streamMessage},
	{Major: 3, Minor: 3}: {streamMsgAppV2, streamMessage},
	{Major: 3, Minor: 4}: {streamMsgAppV2, streamMessage},
	{Major: 3, Minor: 5}: {streamMsgAppV2, streamMessage},
	{Major: 3, Minor: 6}: {streamMsgAppV2, streamMessage},
}

// streamSupported reports whether a peer answering with remote may be read
// as a stream of type t by a member of version local.
func streamSupported(remote, local version, t streamType) bool {
	if compareMajorMinor(remote, local) >= 0 {
		return true
	}
	for _, s := range streamSupport[remote.majorMinor()] {
		if s == t {
			return true
		}
	}
	return false
}

// versionCheck is the outcome of checking a request's version headers.
type versionCheck struct {
	remoteServer, remoteMin string // as parsed, "" when unparsable
	err                     error
}

// checkVersions applies spec 2.3 (1)-(2): the remote server's major.minor
// must be at least our minimum cluster version, and the remote's minimum
// cluster version must not be above our server version. Unparsable headers
// are refused too (etcd would crash the handler).
func checkVersions(h http.Header, localServer, localMin version) versionCheck {
	var vc versionCheck
	rs, err := headerVersion(h, "X-Server-Version")
	if err != nil {
		vc.err = fmt.Errorf("remote X-Server-Version: %w", err)
		return vc
	}
	vc.remoteServer = rs.String()
	rm, err := headerVersion(h, "X-Min-Cluster-Version")
	if err != nil {
		vc.err = fmt.Errorf("remote X-Min-Cluster-Version: %w", err)
		return vc
	}
	vc.remoteMin = rm.String()
	if compareMajorMinor(rs, localMin) < 0 {
		vc.err = fmt.Errorf("remote version is too low: remote=%s, local minimum=%s", rs, localMin)
	} else if compareMajorMinor(rm, localServer) > 0 {
		vc.err = fmt.Errorf("local version is too low: remote minimum=%s, local=%s", rm, localServer)
	}
	return vc
}
