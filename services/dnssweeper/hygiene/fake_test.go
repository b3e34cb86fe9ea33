package hygiene

import (
	"context"
	"errors"
	"net/netip"
	"strings"
)

// zone is an in-memory Resolver for the pure logic's tests: records by
// lower-case name; a name listed in fail answers with a temporary error.
type zone struct {
	txt  map[string][]string
	a    map[string][]string
	aaaa map[string][]string
	mx   map[string][]MX
	ptr  map[string][]string
	fail map[string]bool
	// asked counts queries per name, to check caching and limits.
	asked map[string]int
}

func newZone() *zone {
	return &zone{txt: map[string][]string{}, a: map[string][]string{}, aaaa: map[string][]string{},
		mx: map[string][]MX{}, ptr: map[string][]string{}, fail: map[string]bool{}, asked: map[string]int{}}
}

var errTemp = errors.New("SERVFAIL")

func (z *zone) LookupTXT(_ context.Context, name string) ([]string, error) {
	return lookup(z, z.txt, name)
}

func (z *zone) LookupIP(_ context.Context, name string, ip6 bool) ([]netip.Addr, error) {
	m := z.a
	if ip6 {
		m = z.aaaa
	}
	ss, err := lookup(z, m, name)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out, nil
}

func (z *zone) LookupMX(_ context.Context, name string) ([]MX, error) {
	name = strings.ToLower(name)
	z.asked[name]++
	if z.fail[name] {
		return nil, errTemp
	}
	if mx, ok := z.mx[name]; ok {
		return mx, nil
	}
	return nil, ErrNotFound
}

func (z *zone) LookupPTR(_ context.Context, addr netip.Addr) ([]string, error) {
	return lookup(z, z.ptr, addr.String())
}

func lookup(z *zone, m map[string][]string, name string) ([]string, error) {
	name = strings.ToLower(name)
	z.asked[name]++
	if z.fail[name] {
		return nil, errTemp
	}
	if v, ok := m[name]; ok && len(v) > 0 {
		return v, nil
	}
	return nil, ErrNotFound
}
