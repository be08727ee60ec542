package config

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/types"
)

// flag.Value implementations for the field types the std flag package lacks.
// Their Set errors are etcd's texts (A.1).

// urlsValue is a comma-separated URL list: parsed with types.NewURLs (sorted,
// etcd's error texts) and de-duplicated.
type urlsValue struct {
	p *[]url.URL
	// except is a value accepted verbatim instead of a URL list ("*" for cors).
	except string
	// raw receives the accepted strings when except is set.
	raw *[]string
}

func (v *urlsValue) Set(s string) error {
	if v.raw != nil && s == v.except {
		*v.raw = []string{s}
		return nil
	}
	us, err := types.NewURLs(strings.Split(s, ","))
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	out := make([]url.URL, 0, len(us))
	for _, u := range us {
		if seen[u.String()] {
			continue
		}
		seen[u.String()] = true
		out = append(out, u)
	}
	if v.raw != nil {
		ss := make([]string, len(out))
		for i := range out {
			ss[i] = out[i].String()
		}
		sort.Strings(ss)
		*v.raw = ss
		return nil
	}
	*v.p = out
	return nil
}

func (v *urlsValue) String() string {
	if v == nil {
		return ""
	}
	if v.raw != nil {
		return strings.Join(*v.raw, ",")
	}
	if v.p == nil {
		return ""
	}
	return urlsString(*v.p)
}

func urlsString(us []url.URL) string {
	ss := make([]string, len(us))
	for i := range us {
		ss[i] = us[i].String()
	}
	sort.Strings(ss)
	return strings.Join(ss, ",")
}

// stringsValue is a comma-separated list kept as given.
type stringsValue struct{ p *[]string }

func (v *stringsValue) Set(s string) error { *v.p = strings.Split(s, ","); return nil }
func (v *stringsValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}

// uniqueStringsValue is a comma-separated set, kept sorted.
type uniqueStringsValue struct{ p *[]string }

func (v *uniqueStringsValue) Set(s string) error {
	seen := map[string]bool{}
	var out []string
	for _, x := range strings.Split(s, ",") {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	sort.Strings(out)
	*v.p = out
	return nil
}

func (v *uniqueStringsValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}

// uint32Value parses like strconv.ParseUint(s, 0, 32), error text unwrapped.
type uint32Value struct{ p *uint32 }

func (v *uint32Value) Set(s string) error {
	n, err := strconv.ParseUint(s, 0, 32)
	*v.p = uint32(n)
	return err
}

func (v *uint32Value) String() string {
	if v == nil || v.p == nil {
		return "0"
	}
	return strconv.FormatUint(uint64(*v.p), 10)
}

// errInvalidValue is the text etcd's selective flags report.
var errInvalidValue = errors.New("invalid value")

// selectValue accepts one of valid.
type selectValue struct {
	p     *string
	valid []string
}

func (v *selectValue) Set(s string) error {
	for _, ok := range v.valid {
		if s == ok {
			*v.p = s
			return nil
		}
	}
	return errInvalidValue
}

func (v *selectValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return *v.p
}

// selectListValue accepts a comma list of valid items; each Set adds to the
// items set before (the first Set replaces the default) and keeps them sorted.
type selectListValue struct {
	p     *string
	valid []string
	items []string
}

func (v *selectListValue) Set(s string) error {
	for _, x := range strings.Split(s, ",") {
		ok := false
		for _, y := range v.valid {
			ok = ok || x == y
		}
		if !ok {
			return fmt.Errorf("invalid value %q", x)
		}
		v.items = append(v.items, x)
	}
	sort.Strings(v.items)
	*v.p = strings.Join(v.items, ",")
	return nil
}

func (v *selectListValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return *v.p
}

// gatesValue sets feature gates, cumulatively.
type gatesValue struct{ p *FeatureGates }

func (v *gatesValue) Set(s string) error { return v.p.set(s) }
func (v *gatesValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return v.p.String()
}

// ignoredValue is a legacy flag: accepted like a bool, with no effect.
type ignoredValue struct {
	name string
	p    *[]string
}

func (v *ignoredValue) IsBoolFlag() bool { return true }
func (v *ignoredValue) String() string   { return "" }
func (v *ignoredValue) Set(string) error {
	*v.p = append(*v.p, v.name)
	return nil
}
