package rafthttp

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.uber.org/zap"
)

// likelyMismatchCauses is logged with every cluster ID mismatch, on both
// sides, because the bare IDs rarely tell an operator what went wrong.
const likelyMismatchCauses = "one of the two members runs on a stale data dir left from an earlier cluster; " +
	"or the members were started with different --initial-cluster-token values or --initial-cluster member lists; " +
	"or a member meant to join an existing cluster was started with --initial-cluster-state=new instead of existing"

// setRequestHeaders sets the headers every stream dial, pipeline POST and
// snapshot POST carries (spec 2.1).
func (t *Transport) setRequestHeaders(h http.Header) {
	h.Set("X-Server-From", t.localHex)
	h.Set("X-Server-Version", t.cfg.ServerVersion)
	h.Set("X-Min-Cluster-Version", t.cfg.MinClusterVersion)
	h.Set("X-Etcd-Cluster-ID", t.clusterHex)
	if t.urlsHeader != "" {
		h.Set("X-PeerURLs", t.urlsHeader)
	}
}

// readErrorBody reads at most 4 KiB of an error answer and closes it.
func readErrorBody(resp *http.Response) (string, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return string(b), err
}

// drainClose reads what is left of a small answer so the connection can be
// reused, then closes it.
func drainClose(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// refusal classifies a 412 answer body from peer to (spec 2.5) and logs
// it. onStream selects the stream dialer's wording.
func (t *Transport) refusal(to uint64, body string, resp *http.Response, onStream bool) error {
	switch strings.TrimSuffix(body, "\n") {
	case ErrIncompatibleVersion.Error():
		msg := "request sent was ignored by peer"
		if onStream {
			msg = "request sent was ignored by remote peer due to server version incompatibility"
		}
		t.lg.Error(msg,
			zap.String("local-member-id", t.localHex),
			zap.String("local-member-server-version", t.cfg.ServerVersion),
			zap.String("local-member-minimum-cluster-version", t.cfg.MinClusterVersion),
			zap.String("remote-peer-id", types.ID(to).String()),
			zap.String("remote-peer-server-version", resp.Header.Get("X-Server-Version")),
			zap.Error(ErrIncompatibleVersion))
		return fmt.Errorf("peer %s: %w", types.ID(to), ErrIncompatibleVersion)
	case ErrClusterIDMismatch.Error():
		msg := "request sent was ignored due to cluster ID mismatch"
		if onStream {
			msg = "request sent was ignored by remote peer due to cluster ID mismatch"
		}
		key := fmt.Sprintf("sent/%s/%s/%v", types.ID(to), resp.Header.Get("X-Etcd-Cluster-ID"), onStream)
		t.mismatchLog.log(key, func(suppressed int) {
			t.lg.Error(msg,
				zap.String("local-member-id", t.localHex),
				zap.String("local-member-cluster-id", t.clusterHex),
				zap.String("remote-peer-id", types.ID(to).String()),
				zap.String("remote-peer-cluster-id", resp.Header.Get("X-Etcd-Cluster-ID")),
				zap.String("remote-peer-url", resp.Request.URL.Redacted()),
				zap.String("likely-causes", likelyMismatchCauses),
				zap.Int("suppressed-repeats", suppressed),
				zap.Error(ErrClusterIDMismatch))
		})
		return fmt.Errorf("peer %s: %w", types.ID(to), ErrClusterIDMismatch)
	default:
		return fmt.Errorf("unhandled error %q when precondition failed", body)
	}
}

// checkPostResponse turns a pipeline answer into an error (spec 2.5):
// 204 is success, 403 means this member was removed.
func (t *Transport) checkPostResponse(to uint64, resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusNoContent:
		drainClose(resp)
		return nil
	case http.StatusPreconditionFailed:
		body, err := readErrorBody(resp)
		if err != nil {
			return fmt.Errorf("read answer of peer %s: %w", types.ID(to), err)
		}
		return t.refusal(to, body, resp, false)
	case http.StatusForbidden:
		drainClose(resp)
		return fmt.Errorf("peer %s refused our message: %w", types.ID(to), ErrMemberRemoved)
	default:
		drainClose(resp)
		return fmt.Errorf("unexpected http status %s while posting to %q", http.StatusText(resp.StatusCode), resp.Request.URL.Redacted())
	}
}
