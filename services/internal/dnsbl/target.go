package dnsbl

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
)

// maxName is the longest DNS name in presentation form, without the
// trailing dot (RFC 1035: 255 octets on the wire).
const maxName = 253

// Target is one thing checked against blocklists: an IP address or a
// domain name.
type Target struct {
	Kind Kind
	// IP is set for KindIP; IPv4-mapped IPv6 addresses are unmapped.
	IP netip.Addr
	// Domain is set for KindDomain: lower case, ASCII (A-labels), no
	// trailing dot.
	Domain string
}

// IPTarget returns the target for addr.
func IPTarget(addr netip.Addr) Target { return Target{Kind: KindIP, IP: addr.Unmap()} }

// ParseTarget reads an IP address (v4 or v6) or a domain name.
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return Target{}, fmt.Errorf("dnsbl: %q: an address with a zone is not a target", s)
		}
		return IPTarget(a), nil
	}
	d := lower(s)
	if err := checkDomain(d); err != nil {
		return Target{}, fmt.Errorf("dnsbl: %q is neither an IP address nor a domain name: %w", s, err)
	}
	return Target{Kind: KindDomain, Domain: d}, nil
}

// String is the address or the domain name.
func (t Target) String() string {
	if t.Kind == KindIP {
		return t.IP.String()
	}
	return t.Domain
}

// IsZero reports whether t is the zero Target.
func (t Target) IsZero() bool { return t.Kind == "" }

// checkDomain accepts an ASCII domain name: labels of letters, digits,
// hyphens and underscores, 1 to 63 long, 253 in all. A single label is
// allowed (RFC 5782's test entries "test" and "invalid" are one); an
// all-digit last label is not (RFC 3696 section 2), which catches a
// mistyped IP address. d has no trailing dot.
func checkDomain(d string) error {
	if d == "" {
		return errors.New("empty name")
	}
	if len(d) > maxName {
		return fmt.Errorf("name longer than %d characters", maxName)
	}
	last := d[strings.LastIndexByte(d, '.')+1:]
	if strings.Trim(last, "0123456789") == "" {
		return errors.New("the last label is all digits (a mistyped IP address?)")
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" {
			return errors.New("empty label")
		}
		if len(label) > 63 {
			return errors.New("label longer than 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with a hyphen", label)
		}
		for i := range len(label) {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("label %q has a character other than letters, digits, - and _ (write IDNs as xn-- A-labels)", label)
			}
		}
	}
	return nil
}

const hexDigits = "0123456789abcdef"

// ReverseIP is the query label sequence for an address: the octets of an
// IPv4 address reversed ("2.0.0.127"), or the 32 nibbles of an IPv6 address
// reversed, as in ip6.arpa (RFC 5782 sections 2.1 and 2.4).
func ReverseIP(a netip.Addr) string {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		var buf [15]byte
		out := buf[:0]
		for i := 3; i >= 0; i-- {
			out = strconv.AppendUint(out, uint64(b[i]), 10)
			if i > 0 {
				out = append(out, '.')
			}
		}
		return string(out)
	}
	b := a.As16()
	var buf [63]byte
	out := buf[:0]
	for i := 15; i >= 0; i-- {
		out = append(out, hexDigits[b[i]&0xf], '.', hexDigits[b[i]>>4])
		if i > 0 {
			out = append(out, '.')
		}
	}
	return string(out)
}

// Errors of QueryName.
var (
	ErrKindMismatch = errors.New("dnsbl: target kind does not match the zone")
	ErrNoIPv6       = errors.New("dnsbl: the zone does not list IPv6 addresses")
	ErrNameTooLong  = errors.New("dnsbl: query name too long")
)

// Query is one DNS name to ask a blocklist.
type Query struct {
	// Name is the fully qualified name sent, with its trailing dot. With a
	// DQS key it contains the key: never log it or put it in events.
	Name string
	// Display is Name without the trailing dot and with any key replaced
	// by [REDACTED]: the form for logs, events and people.
	Display string
}

// QueryName builds the name to ask b about t.
func (b *Blocklist) QueryName(t Target) (Query, error) {
	if !b.Applies(t) {
		if t.Kind == b.zone.Kind {
			return Query{}, ErrNoIPv6
		}
		return Query{}, ErrKindMismatch
	}
	var head string
	if t.Kind == KindIP {
		head = ReverseIP(t.IP)
	} else {
		head = t.Domain
	}
	if len(head)+1+len(b.base) > maxName {
		return Query{}, ErrNameTooLong
	}
	return Query{Name: head + "." + b.base + ".", Display: head + "." + b.display}, nil
}

// ExpandPrefix lists every address of p, in order. It refuses a prefix
// holding more than limit addresses, so a typo such as /8 for /28 cannot
// start a sweep of sixteen million queries.
func ExpandPrefix(p netip.Prefix, limit int) ([]netip.Addr, error) {
	if !p.IsValid() {
		return nil, errors.New("dnsbl: invalid prefix")
	}
	p = p.Masked()
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits >= bits.UintSize-1 || limit < 1 || 1<<hostBits > limit {
		return nil, fmt.Errorf("dnsbl: %s holds more than %d addresses", p, limit)
	}
	n := 1 << hostBits
	out := make([]netip.Addr, 0, n)
	for a := p.Addr(); len(out) < n; a = a.Next() {
		out = append(out, a)
	}
	return out, nil
}

// PrefixSize is the number of addresses in p, capped at 1<<62.
func PrefixSize(p netip.Prefix) uint64 {
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits >= 62 {
		return 1 << 62
	}
	return 1 << hostBits
}
