package dnsbl

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Kind says what a zone lists, and what a target is: IP addresses or
// domain names.
type Kind string

const (
	KindIP     Kind = "ip"
	KindDomain Kind = "domain"
)

// Class says what a return code means: a listing, or a refusal to answer
// (an error code), which is never a listing.
type Class string

const (
	ClassListed Class = "listed"
	ClassError  Class = "error"
)

// Code is the catalogue's reading of one return code (or prefix of codes).
type Code struct {
	// Class is listed or error.
	Class Class `yaml:"class"`
	// Meaning is the operator's reading of the code, shown with a listing.
	Meaning string `yaml:"meaning"`
}

// TestEntries are the names a zone must and must not list (RFC 5782
// section 5). For an ip zone they are addresses, for a domain zone names.
type TestEntries struct {
	// Listed are entries the zone must list: default 127.0.0.2 (test for
	// domain zones).
	Listed []string `yaml:"listed"`
	// NotListed are entries it must not list: default 127.0.0.1 (invalid for
	// domain zones).
	NotListed []string `yaml:"not_listed"`
}

// Zone is one catalogue entry, as written in zones.yaml or in a
// configuration's custom zones. Compile checks it and makes it usable.
type Zone struct {
	// Name is the DNS zone queried, e.g. "zen.spamhaus.org". It is also the
	// zone's identity in state and events.
	Name string `yaml:"name"`
	// List is a human name, e.g. "Spamhaus ZEN"; default Name.
	List string `yaml:"list"`
	// Kind is "ip" or "domain".
	Kind Kind `yaml:"kind"`
	// IPv6 says the zone lists IPv6 addresses; IPv6 targets are not asked
	// of zones without it (the answer would always be "not listed").
	IPv6 bool `yaml:"ipv6"`
	// Weight is how much a listing hurts delivery, relative to the other
	// zones; 0 is informational.
	Weight float64 `yaml:"weight"`
	// Default zones are swept when the configuration names none.
	Default bool `yaml:"default"`
	// RegisteredResolver: the zone refuses queries from public resolvers
	// (and, for some lists, from unregistered ones).
	RegisteredResolver bool `yaml:"registered_resolver"`
	// DQSZone is the Spamhaus Data Query Service zone: with a DQS key the
	// query goes to <key>.<DQSZone> instead of Name.
	DQSZone string `yaml:"dqs_zone"`
	// DelistURL is a removal-request URL; "{target}" is replaced by the
	// listed IP or domain.
	DelistURL string `yaml:"delist_url"`
	// Codes maps a return code ("127.0.0.2") or a prefix of them
	// ("127.255.255.0/24") to its class and meaning; the longest match wins.
	Codes map[string]Code `yaml:"codes"`
	// OtherCodes is the class of a 127.0.0.0/8 answer no entry of Codes
	// matches; default "listed" (RFC 5782).
	OtherCodes Class `yaml:"other_codes"`
	// Test overrides the RFC 5782 test entries.
	Test TestEntries `yaml:"test"`
	// Retired, when set, says why the zone must not be used any more.
	Retired string `yaml:"retired"`
}

// loopback is 127.0.0.0/8: the only range a listing may answer with.
var loopback = netip.MustParsePrefix("127.0.0.0/8")

// never is 127.0.0.1, which RFC 5782 forbids as an answer.
var never = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// codeEntry is one compiled entry of Zone.Codes.
type codeEntry struct {
	prefix netip.Prefix
	code   Code
}

// Blocklist is a compiled zone: validated, its codes indexed, and its
// query base (the zone, or <key>.<dqs_zone> with a DQS key) fixed. It is
// immutable and safe for concurrent use.
type Blocklist struct {
	zone Zone
	// base is the suffix of every query name, without the trailing dot.
	base string
	// display is base as it may be shown: the DQS key replaced.
	display string
	// key is the DQS key in use (lower case), or "".
	key   string
	codes []codeEntry // longest prefix first
	other Class
	test  TestEntries
}

// Redacted replaces a DQS key in names shown to people or stored in events.
const Redacted = "[REDACTED]"

// Validate reports every problem of z at once.
func (z Zone) Validate() error {
	var errs []error
	if err := checkDomain(lower(z.Name)); err != nil {
		errs = append(errs, fmt.Errorf("name: %w", err))
	}
	if z.Kind != KindIP && z.Kind != KindDomain {
		errs = append(errs, fmt.Errorf("kind: must be ip or domain, not %q", z.Kind))
	}
	if z.IPv6 && z.Kind == KindDomain {
		errs = append(errs, errors.New("ipv6: only ip zones list IPv6 addresses"))
	}
	if z.Weight < 0 || z.Weight > 100 {
		errs = append(errs, fmt.Errorf("weight: must be between 0 and 100, not %g", z.Weight))
	}
	if z.DQSZone != "" {
		if err := checkDomain(lower(z.DQSZone)); err != nil {
			errs = append(errs, fmt.Errorf("dqs_zone: %w", err))
		}
	}
	if z.DelistURL != "" && !strings.HasPrefix(z.DelistURL, "https://") && !strings.HasPrefix(z.DelistURL, "http://") {
		errs = append(errs, fmt.Errorf("delist_url: must be an http(s) URL, not %q", z.DelistURL))
	}
	if z.OtherCodes != "" && z.OtherCodes != ClassListed && z.OtherCodes != ClassError {
		errs = append(errs, fmt.Errorf("other_codes: must be listed or error, not %q", z.OtherCodes))
	}
	keys := make([]string, 0, len(z.Codes))
	for k := range z.Codes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		c := z.Codes[k]
		p, err := parseCodeKey(k)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("codes.%s: %w", k, err))
		case !loopback.Contains(p.Addr()) || p.Bits() < loopback.Bits():
			errs = append(errs, fmt.Errorf("codes.%s: return codes lie inside 127.0.0.0/8 (anything else is never a listing)", k))
		case p.Contains(never) && c.Class == ClassListed:
			errs = append(errs, fmt.Errorf("codes.%s: 127.0.0.1 is never a valid listing (RFC 5782 section 2.1)", k))
		}
		if c.Class != ClassListed && c.Class != ClassError {
			errs = append(errs, fmt.Errorf("codes.%s.class: must be listed or error, not %q", k, c.Class))
		}
		if strings.TrimSpace(c.Meaning) == "" {
			errs = append(errs, fmt.Errorf("codes.%s.meaning: is required", k))
		}
	}
	test := z.testEntries()
	if len(test.Listed) == 0 {
		errs = append(errs, errors.New("test.listed: a zone needs at least one entry it must list"))
	}
	for i, name := range append(slices.Clone(test.Listed), test.NotListed...) {
		t, err := ParseTarget(name)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("test entry %d %q: %w", i, name, err))
		case z.Kind == KindIP || z.Kind == KindDomain:
			if t.Kind != z.Kind {
				errs = append(errs, fmt.Errorf("test entry %q: a %s zone tests with %s targets", name, z.Kind, z.Kind))
			}
		}
	}
	return errors.Join(errs...)
}

// parseCodeKey reads "127.0.0.2" or "127.255.255.0/24".
func parseCodeKey(k string) (netip.Prefix, error) {
	if strings.Contains(k, "/") {
		p, err := netip.ParsePrefix(k)
		if err != nil || !p.Addr().Is4() {
			return netip.Prefix{}, errors.New("not an IPv4 address or prefix")
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("prefix has host bits set (want %s)", p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(k)
	if err != nil || !a.Is4() {
		return netip.Prefix{}, errors.New("not an IPv4 address or prefix")
	}
	return netip.PrefixFrom(a, 32), nil
}

// testEntries are the zone's test entries, or the RFC 5782 defaults.
func (z Zone) testEntries() TestEntries {
	t := z.Test
	if len(t.Listed) == 0 && len(t.NotListed) == 0 {
		if z.Kind == KindDomain {
			return TestEntries{Listed: []string{"test"}, NotListed: []string{"invalid"}}
		}
		return TestEntries{Listed: []string{"127.0.0.2"}, NotListed: []string{"127.0.0.1"}}
	}
	return t
}

// ListName is the zone's human name, or its DNS name.
func (z Zone) ListName() string {
	if z.List != "" {
		return z.List
	}
	return z.Name
}

// Compile validates z and returns it ready for queries. dqsKey is a
// Spamhaus DQS key; it is used only when the zone has a dqs_zone, and
// never appears in errors or in Display names.
func (z Zone) Compile(dqsKey string) (*Blocklist, error) {
	if err := z.Validate(); err != nil {
		return nil, fmt.Errorf("dnsbl: zone %q: %w", z.Name, err)
	}
	b := &Blocklist{zone: z, base: lower(z.Name), display: lower(z.Name), other: z.OtherCodes, test: z.testEntries()}
	if b.other == "" {
		b.other = ClassListed
	}
	if z.DQSZone != "" && dqsKey != "" {
		if !validDQSKey(dqsKey) {
			return nil, fmt.Errorf("dnsbl: zone %q: the DQS key is not a DNS label (letters and digits, at most 63)", z.Name)
		}
		b.key = lower(dqsKey)
		b.base = b.key + "." + lower(z.DQSZone)
		b.display = Redacted + "." + lower(z.DQSZone)
	}
	for k, c := range z.Codes {
		p, _ := parseCodeKey(k) // checked by Validate
		b.codes = append(b.codes, codeEntry{prefix: p, code: c})
	}
	slices.SortFunc(b.codes, func(x, y codeEntry) int {
		if x.prefix.Bits() != y.prefix.Bits() {
			return y.prefix.Bits() - x.prefix.Bits()
		}
		return x.prefix.Addr().Compare(y.prefix.Addr())
	})
	return b, nil
}

func validDQSKey(k string) bool {
	if k == "" || len(k) > 63 {
		return false
	}
	for i := range len(k) {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Zone returns the catalogue entry b was compiled from.
func (b *Blocklist) Zone() Zone { return b.zone }

// Name is the zone's DNS name: its identity in state and events, also when
// queries go to a DQS zone.
func (b *Blocklist) Name() string { return b.zone.Name }

// UsesDQS reports whether queries go to the Spamhaus DQS zone with a key.
func (b *Blocklist) UsesDQS() bool { return b.base != lower(b.zone.Name) }

// Redact replaces the DQS key in text from the zone (a TXT record, an
// error) that may echo the query name.
func (b *Blocklist) Redact(text string) string {
	if b.key == "" {
		return text
	}
	// ASCII-only lower case keeps byte offsets equal in text and low,
	// whatever bytes text holds.
	low := string(bytesLowerASCII([]byte(text)))
	if !strings.Contains(low, b.key) {
		return text
	}
	var out strings.Builder
	for {
		i := strings.Index(low, b.key)
		if i < 0 {
			out.WriteString(text)
			return out.String()
		}
		out.WriteString(text[:i])
		out.WriteString(Redacted)
		text, low = text[i+len(b.key):], low[i+len(b.key):]
	}
}

// Applies reports whether t is something this zone lists: the right kind,
// and for an IPv6 address a zone that lists IPv6.
func (b *Blocklist) Applies(t Target) bool {
	if t.Kind != b.zone.Kind {
		return false
	}
	return t.Kind != KindIP || t.IP.Is4() || b.zone.IPv6
}

// DelistURL is the removal URL for target, or "".
func (b *Blocklist) DelistURL(t Target) string {
	if b.zone.DelistURL == "" {
		return ""
	}
	return strings.ReplaceAll(b.zone.DelistURL, "{target}", t.String())
}

// Lookup returns the class and meaning of one return code. Anything
// outside 127.0.0.0/8, and 127.0.0.1, is an error whatever the catalogue says.
func (b *Blocklist) Lookup(code netip.Addr) Code {
	code = code.Unmap()
	if !code.Is4() || !loopback.Contains(code) {
		return Code{Class: ClassError, Meaning: "outside 127.0.0.0/8, so not a blocklist answer (a resolver rewriting NXDOMAIN?)"}
	}
	if code == never {
		return Code{Class: ClassError, Meaning: "127.0.0.1 is never a valid answer (RFC 5782 section 2.1)"}
	}
	for _, e := range b.codes {
		if e.prefix.Contains(code) {
			return e.code
		}
	}
	if b.other == ClassError {
		return Code{Class: ClassError, Meaning: "return code not in the catalogue"}
	}
	return Code{Class: ClassListed, Meaning: "listed (return code not in the catalogue)"}
}

// TestTargets returns the zone's test entries: the targets it must list and
// those it must not.
func (b *Blocklist) TestTargets() (listed, notListed []Target) {
	for _, s := range b.test.Listed {
		t, _ := ParseTarget(s) // checked by Validate
		listed = append(listed, t)
	}
	for _, s := range b.test.NotListed {
		t, _ := ParseTarget(s)
		notListed = append(notListed, t)
	}
	return listed, notListed
}

func bytesLowerASCII(b []byte) []byte {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}

func lower(s string) string { return strings.TrimSuffix(strings.ToLower(s), ".") }
