package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.uber.org/zap"
)

// fakeMember answers reads with readErr (serializable ones too when
// serialErr is set) and reports the given alarms.
type fakeMember struct {
	alarms    []*pb.AlarmMember
	readErr   error
	serialErr bool
	stopped   bool
	learner   bool
}

func (f *fakeMember) Leader() uint64                  { return 1 }
func (f *fakeMember) Alarms() []*pb.AlarmMember       { return f.alarms }
func (f *fakeMember) ClusterVersion() string          { return "3.6.0" }
func (f *fakeMember) RaftStatus() (raft.Status, bool) { return raft.Status{}, !f.stopped }
func (f *fakeMember) IsLearner() bool                 { return f.learner }
func (f *fakeMember) Range(_ context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if f.readErr != nil && (!r.Serializable || f.serialErr) {
		return nil, f.readErr
	}
	return &pb.RangeResponse{}, nil
}

func serve(t *testing.T, h http.Handler, method, target string) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Code, rec.Header(), rec.Body.String()
}

func TestProbes(t *testing.T) {
	down := errors.New("etcdserver: request timed out")
	corrupt := []*pb.AlarmMember{{MemberID: 1, Alarm: pb.AlarmType_CORRUPT}}
	for _, tc := range []struct {
		name   string
		m      *fakeMember
		method string
		target string
		code   int
		body   string
	}{
		{"livez", &fakeMember{}, "GET", "/livez", 200, "ok\n"},
		{"livez verbose", &fakeMember{}, "GET", "/livez?verbose", 200, "[+]serializable_read ok\nok\n"},
		{"readyz verbose", &fakeMember{}, "GET", "/readyz?verbose", 200,
			"[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n"},
		{"readyz on a learner", &fakeMember{learner: true}, "GET", "/readyz", 503,
			"[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[-]non_learner failed: not supported for learner\n\n"},
		{"excluded checks are left out", &fakeMember{}, "GET", "/readyz?verbose&exclude=non_learner&exclude=nope", 200,
			"[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\nok\n"},
		{"one check", &fakeMember{}, "GET", "/readyz/linearizable_read?verbose", 200, "[+]linearizable_read ok\nok\n"},
		{"a failure lists every check", &fakeMember{readErr: down}, "GET", "/readyz", 503,
			"[+]data_corruption ok\n[+]serializable_read ok\n[-]linearizable_read failed: etcdserver: request timed out\n[+]non_learner ok\n\n"},
		{"a corrupt alarm", &fakeMember{alarms: corrupt}, "GET", "/readyz/data_corruption", 503,
			"[-]data_corruption failed: alarm activated: CORRUPT\n\n"},
		{"livez reads serializably", &fakeMember{readErr: down}, "GET", "/livez", 200, "ok\n"},
		{"an excluded failure", &fakeMember{readErr: down}, "GET", "/readyz?exclude=linearizable_read", 200, "ok\n"},
		{"POST", &fakeMember{}, "POST", "/livez", 405, "Method Not Allowed\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHandler(tc.m, Options{Logger: zap.NewNop(), ProbeTimeout: time.Second})
			code, hdr, body := serve(t, h, tc.method, tc.target)
			if code != tc.code || body != tc.body || hdr.Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Errorf("%d %q %q, want %d %q", code, hdr.Get("Content-Type"), body, tc.code, tc.body)
			}
		})
	}
}

func TestDebugVars(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    *fakeMember
		raft string // raft.status as JSON
	}{
		{"running", &fakeMember{}, `"raftState"`},
		{"stopped", &fakeMember{stopped: true}, "null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := serve(t, NewHandler(tc.m, Options{Logger: zap.NewNop()}), "GET", "/debug/vars")
			var vars map[string]json.RawMessage
			if err := json.Unmarshal([]byte(body), &vars); code != 200 || err != nil {
				t.Fatalf("%d %v %q", code, err, body)
			}
			if hdr.Get("Content-Type") != "application/json; charset=utf-8" || !strings.HasPrefix(body, "{\n") || !strings.HasSuffix(body, "\n}\n") {
				t.Errorf("layout: %q %q", hdr.Get("Content-Type"), body)
			}
			var keys []string
			for k := range vars {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if strings.Join(keys, " ") != "cmdline file_descriptor_limit memstats raft.status" {
				t.Errorf("keys %v", keys)
			}
			if !strings.Contains(string(vars["raft.status"]), tc.raft) {
				t.Errorf("raft.status %s, want %s", vars["raft.status"], tc.raft)
			}
		})
	}
	code, hdr, body := serve(t, NewHandler(&fakeMember{}, Options{Logger: zap.NewNop()}), "PUT", "/debug/vars")
	if code != 405 || hdr.Get("Allow") != "GET" || body != "Method Not Allowed\n" {
		t.Errorf("PUT: %d %v %q", code, hdr, body)
	}
}

// The metrics port serves /metrics and the health endpoints, nothing else.
func TestMetricsHandler(t *testing.T) {
	h := NewMetricsHandler(&fakeMember{}, Options{Logger: zap.NewNop(), ProbeTimeout: time.Second})
	for target, want := range map[string]int{"/health": 200, "/livez": 200, "/readyz": 200, "/version": 404, "/debug/vars": 404} {
		if code, _, _ := serve(t, h, "GET", target); code != want {
			t.Errorf("%s: %d, want %d", target, code, want)
		}
	}
}
