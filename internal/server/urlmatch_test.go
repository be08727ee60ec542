package server

import (
	"context"
	"testing"
	"time"
)

func TestURLsMatch(t *testing.T) {
	for _, tc := range []struct {
		a, b []string
		want string
	}{
		{[]string{"http://127.0.0.1:1", "http://127.0.0.2:1"}, []string{"http://127.0.0.2:1", "http://127.0.0.1:1"}, ""},
		{[]string{"http://127.0.0.1:1"}, []string{"http://127.0.0.1:1", "http://127.0.0.2:1"}, `len(["http://127.0.0.1:1"]) != len(["http://127.0.0.1:1" "http://127.0.0.2:1"])`},
		{[]string{"http://127.0.0.1:2"}, []string{"http://127.0.0.1:3"}, `resolved urls: "http://127.0.0.1:2" != "http://127.0.0.1:3"`},
		// localhost is never resolved (etcd's rule).
		{[]string{"http://localhost:2"}, []string{"http://127.0.0.1:2"}, `resolved urls: "http://localhost:2" != "http://127.0.0.1:2"`},
		{[]string{"unix://a:1"}, []string{"unix://b:1"}, `resolved urls: "unix://a:1" != "unix://b:1"`},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := urlsMatch(ctx, tc.a, tc.b)
		cancel()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%v vs %v: %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}
