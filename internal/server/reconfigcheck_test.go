package server

import (
	"errors"
	"strings"
	"testing"
)

// voters builds voter states from a compact description: one letter per
// voter, the first being this member: 'c' connected and started, 'a'
// active for less than healthInterval, 'd' down (not active), 'u'
// unstarted and down, 'n' unstarted but connected. IDs are 1, 2, ...
func voters(desc string) []voterState {
	var vs []voterState
	for i, c := range desc {
		v := voterState{id: uint64(i + 1), name: "m" + string(rune('1'+i)), self: i == 0}
		switch c {
		case 'c':
			v.active, v.connected = true, true
		case 'a':
			v.active = true
		case 'd':
		case 'u':
			v.name = ""
		case 'n':
			v.name = ""
			v.active, v.connected = true, true
		}
		if v.self {
			v.active, v.connected = true, true
		}
		vs = append(vs, v)
	}
	return vs
}

func TestCheckAdd(t *testing.T) {
	for _, tc := range []struct {
		name    string
		voters  string
		learner bool
		want    error
		mention string // the refusal's reason names this member
	}{
		{"single voter grows", "c", false, nil, ""},
		{"single voter takes a learner", "c", true, nil, ""},
		{"healthy three", "ccc", false, nil, ""},
		// Seed 003's pitfall: one of three down, adding a fourth would need
		// 3 of 4 for a quorum with only 2 running.
		{"one of three down", "ccd", false, ErrUnhealthy, "m3 (3)"},
		{"one of three down, learner too", "ccd", true, ErrUnhealthy, "m3 (3)"},
		{"one of five down", "ccccd", false, nil, ""},
		{"two of five down", "cccdd", false, ErrUnhealthy, "m4 (4), m5 (5)"},
		{"a peer connected for less than 5s", "cca", false, ErrUnhealthy, "m3 (3)"},
		// An earlier add that never started: 1 of 2 started, and 3 members
		// would need 2.
		{"previous add not started", "cu", false, ErrNotEnoughStartedMembers, "2 (not started)"},
		{"previous add not started, learner", "cu", true, ErrUnhealthy, "2 (not started)"},
		// Connected does not mean started: 2 of 4 would have started.
		{"unstarted but connected", "ccn", false, ErrNotEnoughStartedMembers, "3 (not started)"},
		{"one unstarted of four", "cccn", false, nil, ""},
		{"two unstarted of four", "ccnn", false, ErrNotEnoughStartedMembers, "3 (not started), 4 (not started)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checkAdd(voters(tc.voters), tc.learner)
			checkRefusal(t, r, tc.want, tc.mention)
		})
	}
}

func TestCheckRemove(t *testing.T) {
	for _, tc := range []struct {
		name    string
		voters  string
		target  uint64
		learner bool
		want    error
		mention string
	}{
		{"a learner always goes", "cdd", 9, true, nil, ""},
		{"healthy three, a follower", "ccc", 2, false, nil, ""},
		{"healthy three, itself", "ccc", 1, false, nil, ""},
		{"lone member removing itself", "c", 1, false, ErrNotEnoughStartedMembers, ""},
		{"unknown ID passes to validation", "ccc", 99, false, nil, ""},
		// A dead member may go: it is not part of the active quorum.
		{"the dead one of three", "ccd", 3, false, nil, ""},
		{"a live one while another is dead", "ccd", 2, false, ErrUnhealthy, "m3 (3)"},
		{"itself while another is dead", "ccd", 1, false, ErrUnhealthy, "m3 (3)"},
		{"a live one of five with one dead", "ccccd", 2, false, nil, ""},
		{"a peer connected for less than 5s", "cac", 3, false, ErrUnhealthy, "m2 (2)"},
		{"the unstarted one", "ccu", 3, false, nil, ""},
		{"leaving an unstarted majority", "cuu", 1, false, ErrNotEnoughStartedMembers, "2 (not started), 3 (not started)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checkRemove(voters(tc.voters), tc.target, tc.learner)
			checkRefusal(t, r, tc.want, tc.mention)
		})
	}
}

func TestCheckPromote(t *testing.T) {
	for _, tc := range []struct {
		voters  string
		want    error
		mention string
	}{
		{"c", nil, ""},
		{"ccd", nil, ""}, // started counts, connected does not
		{"cu", nil, ""},  // 2 started (the learner counts) of 3
		{"cuu", ErrNotEnoughStartedMembers, "2 (not started), 3 (not started)"},
	} {
		t.Run(tc.voters, func(t *testing.T) {
			checkRefusal(t, checkPromote(voters(tc.voters)), tc.want, tc.mention)
		})
	}
}

func checkRefusal(t *testing.T, r *refusal, want error, mention string) {
	t.Helper()
	if want == nil {
		if r != nil {
			t.Fatalf("refused: %v (%s)", r.err, r.reason)
		}
		return
	}
	if r == nil || !errors.Is(r.err, want) {
		t.Fatalf("got %v, want %v", r, want)
	}
	if !strings.Contains(r.reason, mention) {
		t.Errorf("reason %q does not name %q", r.reason, mention)
	}
	if r.etcdMsg == "" || r.hint == "" {
		t.Errorf("refusal without etcd's message or a hint: %+v", r)
	}
}
