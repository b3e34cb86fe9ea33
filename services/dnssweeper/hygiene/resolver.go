package hygiene

import (
	"context"
	"errors"
	"net/netip"
)

// ErrNotFound is what a Resolver returns (wrapped or not) when a name does
// not exist (NXDOMAIN) or has no records of the asked type (NODATA). Any
// other error is a temporary failure.
var ErrNotFound = errors.New("hygiene: no such record")

// MX is one mail exchanger.
type MX struct {
	Pref uint16
	// Host is lower case without the trailing dot; "" (written ".") is a
	// null MX (RFC 7505).
	Host string
}

// Resolver answers the DNS questions an audit asks. Names are given
// without a trailing dot. Implementations return ErrNotFound for NXDOMAIN
// and NODATA.
type Resolver interface {
	// LookupTXT returns each TXT record as one string (its character
	// strings joined without separators, RFC 7208 section 3.3).
	LookupTXT(ctx context.Context, name string) ([]string, error)
	// LookupIP returns the A records (ip6 false) or AAAA records (ip6 true).
	LookupIP(ctx context.Context, name string, ip6 bool) ([]netip.Addr, error)
	LookupMX(ctx context.Context, name string) ([]MX, error)
	// LookupPTR returns the PTR names of addr, lower case without the
	// trailing dot.
	LookupPTR(ctx context.Context, addr netip.Addr) ([]string, error)
}

func notFound(err error) bool { return errors.Is(err, ErrNotFound) }
