package rafthttp

import (
	"errors"
	"net/http"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in   string
		want version
		ok   bool
	}{
		{"3.6.16", version{3, 6, 16}, true},
		{"3.6.0", version{3, 6, 0}, true},
		{"3.6.0-cairn.1", version{3, 6, 0}, true},
		{"3.7.0-alpha.0+build.5", version{3, 7, 0}, true},
		{"2.0.0", version{2, 0, 0}, true},
		{"3.6", version{}, false},
		{"cairn-0.1", version{}, false},
		{"bogus", version{}, false},
		{"3.6.x", version{}, false},
		{"", version{}, false},
	}
	for _, tt := range tests {
		got, err := parseVersion(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseVersion(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, errBadVersion) {
			t.Errorf("parseVersion(%q) error %v does not wrap errBadVersion", tt.in, err)
		}
	}
}

func TestCheckVersions(t *testing.T) {
	local, min := version{3, 6, 0}, version{3, 0, 0}
	tests := []struct {
		name           string
		server, minHdr string // "" = header absent
		ok             bool
	}{
		{"etcd 3.6.16", "3.6.16", "3.0.0", true},
		{"etcd 3.5", "3.5.21", "3.0.0", true},
		{"3.0 is the minimum", "3.0.0", "3.0.0", true},
		{"newer patch and minor", "3.7.2", "3.0.0", true},
		{"min cluster 3.6 with any patch", "3.6.0", "3.6.9", true},
		{"too old server", "2.3.0", "2.3.0", false},
		{"min cluster above ours", "3.7.0", "3.7.0", false},
		{"no headers default to 2.0.0", "", "", false},
		{"no min header defaults to 2.0.0", "3.6.0", "", true},
		{"unparsable server", "3.6", "3.0.0", false},
		{"unparsable min", "3.6.0", "cairn", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.server != "" {
				h.Set("X-Server-Version", tt.server)
			}
			if tt.minHdr != "" {
				h.Set("X-Min-Cluster-Version", tt.minHdr)
			}
			vc := checkVersions(h, local, min)
			if (vc.err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", vc.err, tt.ok)
			}
		})
	}
}

func TestStreamSupported(t *testing.T) {
	local := version{3, 6, 0}
	tests := []struct {
		remote version
		want   bool
	}{
		{version{2, 0, 0}, false}, // also an answer without X-Server-Version
		{version{2, 1, 0}, true},
		{version{3, 5, 17}, true},
		{version{3, 6, 16}, true},
		{version{3, 7, 0}, true},
		{version{4, 0, 0}, true},
		{version{1, 9, 0}, false},
	}
	for _, tt := range tests {
		for _, typ := range []streamType{streamMessage, streamMsgAppV2} {
			if got := streamSupported(tt.remote, local, typ); got != tt.want {
				t.Errorf("streamSupported(%v, %v) = %v, want %v", tt.remote, typ, got, tt.want)
			}
		}
	}
}
