package server

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"time"
)

// advertiseResolveTimeout bounds the name lookups of the advertise-URL
// check, as etcd's (30 s).
const advertiseResolveTimeout = 30 * time.Second

// urlsMatch reports, as etcd's check of --initial-advertise-peer-urls
// against a member's --initial-cluster URLs does, whether a and b name the
// same addresses: equal as sorted strings, or equal once every host name
// (but localhost) is replaced by its first address. A failed lookup is
// retried every second until ctx ends. The error says why they differ,
// with etcd's texts.
func urlsMatch(ctx context.Context, a, b []string) error {
	if len(a) != len(b) {
		return fmt.Errorf("len(%q) != len(%q)", a, b)
	}
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	if slices.Equal(a, b) {
		return nil
	}
	ra, err := resolveURLs(ctx, a)
	if err != nil {
		return err
	}
	rb, err := resolveURLs(ctx, b)
	if err != nil {
		return err
	}
	slices.Sort(ra)
	slices.Sort(rb)
	for i := range ra {
		if ra[i] != rb[i] {
			return fmt.Errorf("resolved urls: %q != %q", ra[i], rb[i])
		}
	}
	return nil
}

func resolveURLs(ctx context.Context, us []string) ([]string, error) {
	out := make([]string, len(us))
	for i, s := range us {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("failed to parse %q (%w)", s, err)
		}
		if u.Scheme != "unix" && u.Scheme != "unixs" {
			host, err := resolveHostPort(ctx, u.Host)
			if err != nil {
				return nil, fmt.Errorf("failed to resolve %q (%w)", s, err)
			}
			u.Host = host
		}
		out[i] = u.String()
	}
	return out, nil
}

// resolveHostPort replaces a host name by its first address, retrying
// every second until ctx ends; IP literals and localhost stay.
func resolveHostPort(ctx context.Context, hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	if host == "localhost" || net.ParseIP(host) != nil {
		return hostport, nil
	}
	for {
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err == nil && len(ips) > 0 {
			return net.JoinHostPort(ips[0].IP.String(), port), nil
		}
		if err == nil {
			err = fmt.Errorf("no addresses for %s", host)
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", err
		case <-t.C:
		}
	}
}
