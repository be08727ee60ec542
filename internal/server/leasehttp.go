package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/cairnkv/cairn/internal/lease"
)

// Lease forwarding between members (peer protocol §10.1-10.2): a member
// that does not lead POSTs renewals to <leader peer URL>/leases and
// TimeToLive questions to <leader peer URL>/leases/internal, protobuf
// bodies both ways; the leader answers from its lessor. etcd members and
// cairn members forward to each other.

// Paths of the lease endpoints on the peer port.
const (
	LeasePath         = "/leases"
	LeaseInternalPath = "/leases/internal"
)

// Limits of the lease endpoints, etcd's.
const (
	maxLeaseRequestBytes  = 64 * 1024
	maxLeaseResponseBytes = 100 * 1024 * 1024
)

// errLeaseHTTPTimeout is the 408 answer: apply did not catch up with commit.
var errLeaseHTTPTimeout = errors.New("waiting for node to catch up its applied index has timed out")

// LeaseHandler serves LeasePath and LeaseInternalPath on the peer port.
func (s *Server) LeaseHandler() http.Handler { return http.HandlerFunc(s.serveLease) }

func (s *Server) serveLease(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		// etcd's lease handler sends no Allow header.
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	defer r.Body.Close()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLeaseRequestBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "error reading body", http.StatusBadRequest)
		return
	}
	var out []byte
	switch r.URL.Path {
	case LeasePath:
		var req pb.LeaseKeepAliveRequest
		if err := req.Unmarshal(body); err != nil {
			http.Error(w, "error unmarshalling request", http.StatusBadRequest)
			return
		}
		// The forwarding member only ever reaches here through the
		// leader's checks (renewAsLeader), as a local client would.
		ttl, err := s.renewAsLeader(r.Context(), req.ID)
		if err != nil {
			switch {
			case errors.Is(err, lease.ErrNotFound):
				http.Error(w, err.Error(), http.StatusNotFound)
			case errors.Is(err, ErrTimeoutWaitAppliedIndex):
				http.Error(w, errLeaseHTTPTimeout.Error(), http.StatusRequestTimeout)
			default:
				http.Error(w, err.Error(), http.StatusBadRequest)
			}
			return
		}
		out, err = (&pb.LeaseKeepAliveResponse{ID: req.ID, TTL: ttl}).Marshal()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	case LeaseInternalPath:
		req, err := decodeLeaseInternalRequest(body)
		if err != nil {
			http.Error(w, "error unmarshalling request", http.StatusBadRequest)
			return
		}
		resp, err := s.timeToLiveAsLeader(r.Context(), req.ID, req.Keys)
		switch {
		case errors.Is(err, lease.ErrNotFound):
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		case errors.Is(err, ErrTimeoutWaitAppliedIndex):
			http.Error(w, errLeaseHTTPTimeout.Error(), http.StatusRequestTimeout)
			return
		case err != nil:
			// demoted meanwhile: the asker tries again
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if out, err = encodeLeaseInternalResponse(resp); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	default:
		http.Error(w, fmt.Sprintf("unknown request path %q", r.URL.Path), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/protobuf")
	w.Write(out)
}

// renewAt asks the member at peer URL base to renew lease id.
func (s *Server) renewAt(ctx context.Context, base string, id int64) (int64, error) {
	body, err := (&pb.LeaseKeepAliveRequest{ID: id}).Marshal()
	if err != nil {
		return -1, err
	}
	b, err := s.postLease(ctx, base+LeasePath, body)
	if err != nil {
		return -1, err
	}
	var resp pb.LeaseKeepAliveResponse
	if err := resp.Unmarshal(b); err != nil {
		return -1, fmt.Errorf("lease: %w. data = %q", err, b)
	}
	if resp.ID != id {
		return -1, errors.New("lease: renew id mismatch")
	}
	return resp.TTL, nil
}

// timeToLiveAt asks the member at peer URL base about lease id.
func (s *Server) timeToLiveAt(ctx context.Context, base string, id int64, keys bool) (*pb.LeaseTimeToLiveResponse, error) {
	body, err := encodeLeaseInternalRequest(&pb.LeaseTimeToLiveRequest{ID: id, Keys: keys})
	if err != nil {
		return nil, err
	}
	b, err := s.postLease(ctx, base+LeaseInternalPath, body)
	if err != nil {
		return nil, err
	}
	resp, err := decodeLeaseInternalResponse(b)
	if err != nil {
		return nil, fmt.Errorf("lease: %w. data = %q", err, b)
	}
	if resp.ID != id {
		return nil, errors.New("lease: TTL id mismatch")
	}
	return resp, nil
}

// postLease POSTs a protobuf body and returns the 200 answer's body; 408
// and 404 become errLeaseHTTPTimeout and lease.ErrNotFound.
func (s *Server) postLease(ctx context.Context, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/protobuf")
	resp, err := s.peerClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxLeaseResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxLeaseResponseBytes {
		return nil, fmt.Errorf("lease: response body exceeds %d bytes limit", maxLeaseResponseBytes)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return b, nil
	case http.StatusRequestTimeout:
		return nil, errLeaseHTTPTimeout
	case http.StatusNotFound:
		return nil, lease.ErrNotFound
	}
	return nil, fmt.Errorf("lease: unknown error(%s)", b)
}

// leasepb.LeaseInternalRequest is {LeaseTimeToLiveRequest (1)} and
// leasepb.LeaseInternalResponse is {LeaseTimeToLiveResponse (1)}: a single
// embedded message each.

func encodeLeaseInternalRequest(r *pb.LeaseTimeToLiveRequest) ([]byte, error) {
	inner, err := r.Marshal()
	if err != nil {
		return nil, err
	}
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), inner), nil
}

func encodeLeaseInternalResponse(r *pb.LeaseTimeToLiveResponse) ([]byte, error) {
	inner, err := r.Marshal()
	if err != nil {
		return nil, err
	}
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), inner), nil
}

// embedded returns the last field 1 of a wrapper message (a protobuf
// decoder merges repeated occurrences of a message field; the lease
// messages are never sent twice).
func embedded(b []byte) ([]byte, error) {
	var inner []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			inner, b = v, b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		b = b[m:]
	}
	return inner, nil
}

func decodeLeaseInternalRequest(b []byte) (*pb.LeaseTimeToLiveRequest, error) {
	inner, err := embedded(b)
	if err != nil {
		return nil, err
	}
	r := &pb.LeaseTimeToLiveRequest{}
	return r, r.Unmarshal(inner)
}

func decodeLeaseInternalResponse(b []byte) (*pb.LeaseTimeToLiveResponse, error) {
	inner, err := embedded(b)
	if err != nil {
		return nil, err
	}
	r := &pb.LeaseTimeToLiveResponse{}
	return r, r.Unmarshal(inner)
}
