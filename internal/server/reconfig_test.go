package server

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cairnkv/cairn/internal/membership"
)

// memberSet renders the member set for comparisons.
func memberSet(s *Server) string {
	var out []string
	for _, m := range s.Cluster().Members() {
		out = append(out, fmt.Sprintf("%x%v%v", m.ID, m.PeerURLs, m.IsLearner))
	}
	return fmt.Sprint(out)
}

// On a lone member: a learner is added, updated and removed; every bad
// request gets etcd's error and leaves the member set as it was.
func TestReconfigureLoneMember(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.StrictReconfigCheck = true
	s := startServer(t, cfg)
	ctx := ctxT(t)

	l, ms, err := s.AddMember(ctx, []string{"http://127.0.0.1:23999"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !l.IsLearner || l.Name != "" || len(ms) != 2 || !slices.ContainsFunc(ms, func(m *membership.Member) bool { return m.ID == l.ID && m.IsLearner }) {
		t.Fatalf("added %+v, members %+v", l, ms)
	}
	if ms, err = s.UpdateMember(ctx, l.ID, []string{"http://127.0.0.1:24000"}); err != nil {
		t.Fatal(err)
	}
	if got := s.Cluster().Member(l.ID); got == nil || !slices.Equal(got.PeerURLs, []string{"http://127.0.0.1:24000"}) || !got.IsLearner {
		t.Fatalf("after update: %+v", got)
	}

	before := memberSet(s)
	for _, tc := range []struct {
		name string
		do   func() error
		want error
	}{
		{"a second learner", func() error {
			_, _, err := s.AddMember(ctx, []string{"http://127.0.0.1:24001"}, true)
			return err
		}, membership.ErrTooManyLearners},
		{"a peer URL in use", func() error {
			_, _, err := s.AddMember(ctx, []string{"http://127.0.0.1:24000"}, false)
			return err
		}, membership.ErrPeerURLExists},
		{"a malformed URL", func() error {
			_, _, err := s.AddMember(ctx, []string{"127.0.0.1:24002"}, false)
			return err
		}, ErrBadPeerURLs},
		{"no URL", func() error {
			_, _, err := s.AddMember(ctx, nil, true)
			return err
		}, ErrBadPeerURLs},
		{"update of an unknown ID", func() error {
			_, err := s.UpdateMember(ctx, 12345, []string{"http://127.0.0.1:24003"})
			return err
		}, membership.ErrIDNotFound},
		{"update to a URL in use", func() error {
			_, err := s.UpdateMember(ctx, l.ID, []string{"http://127.0.0.1:12380"})
			return err
		}, membership.ErrPeerURLExists},
		{"update to a malformed URL", func() error {
			_, err := s.UpdateMember(ctx, l.ID, []string{"http://127.0.0.1:x"})
			return err
		}, ErrBadPeerURLs},
		{"promoting a voter", func() error { _, err := s.PromoteMember(ctx, s.ID()); return err }, membership.ErrMemberNotLearner},
		// The learner runs nowhere, so its log is empty.
		{"promoting a learner behind", func() error { _, err := s.PromoteMember(ctx, l.ID); return err }, ErrLearnerNotReady},
		{"promoting an unknown ID", func() error { _, err := s.PromoteMember(ctx, 12345); return err }, membership.ErrIDNotFound},
		{"removing an unknown ID", func() error { _, err := s.RemoveMember(ctx, 12345); return err }, membership.ErrIDNotFound},
		{"removing the only voter", func() error { _, err := s.RemoveMember(ctx, s.ID()); return err }, ErrNotEnoughStartedMembers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if got := memberSet(s); got != before {
				t.Fatalf("member set changed: %s, was %s", got, before)
			}
		})
	}

	// Removing the learner frees the slot; its ID can never return. The ID
	// of a member added at runtime is derived from its URLs and the second
	// it was added in, so re-adding the same URL within the same second
	// names the removed ID.
	if ms, err = s.RemoveMember(ctx, l.ID); err != nil || len(ms) != 1 {
		t.Fatalf("remove learner: %v %v", ms, err)
	}
	if !s.Cluster().IsRemoved(l.ID) {
		t.Fatal("removed ID not recorded")
	}
	for i := 0; ; i++ {
		a, _, err := s.AddMember(ctx, []string{"http://127.0.0.1:25000"}, true)
		if errors.Is(err, membership.ErrIDRemoved) {
			// The previous round's second add (removed just before) was in
			// this same second: that is the refusal this loop looks for.
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RemoveMember(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		_, _, err = s.AddMember(ctx, []string{"http://127.0.0.1:25000"}, true)
		if errors.Is(err, membership.ErrIDRemoved) {
			break
		}
		if err != nil || i == 5 {
			t.Fatalf("re-adding a removed ID: %v", err)
		}
		// The second changed in between: clean up and try again.
		l2 := s.Cluster().Members()
		for _, m := range l2 {
			if m.IsLearner {
				if _, err := s.RemoveMember(ctx, m.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// --max-learners raises the learner limit.
func TestReconfigureLimits(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxLearners = 2
	s := startServer(t, cfg)
	ctx := ctxT(t)
	for i := 0; i < 2; i++ {
		if _, _, err := s.AddMember(ctx, []string{fmt.Sprintf("http://127.0.0.1:2600%d", i)}, true); err != nil {
			t.Fatalf("learner %d: %v", i, err)
		}
	}
	if _, _, err := s.AddMember(ctx, []string{"http://127.0.0.1:26009"}, true); !errors.Is(err, membership.ErrTooManyLearners) {
		t.Fatalf("third learner: %v", err)
	}
}
